package k8s

import (
	"fmt"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ConfigOptions say where the cluster credentials come from. cmd fills them
// from --kubeconfig / KUBECONFIG and --kube-context.
type ConfigOptions struct {
	// Kubeconfig is a path, or a list of paths joined by the OS path list
	// separator as in KUBECONFIG. Empty: in-cluster when running in a pod,
	// else ~/.kube/config.
	Kubeconfig string
	// Context selects a kubeconfig context other than the current one.
	Context string
	// InCluster is true when running in a pod (cmd passes
	// KUBERNETES_SERVICE_HOST != ""); used only when Kubeconfig is empty.
	InCluster bool
	// QPS and Burst of the client (defaults 50 and 100: the client-go
	// defaults of 5 and 10 throttle a watcher's relists).
	QPS   float32
	Burst int
	// UserAgent defaults to "fluxgate".
	UserAgent string
}

// RESTConfig builds a rest.Config from a kubeconfig (with an optional
// context) or from the in-cluster service account.
func RESTConfig(opts ConfigOptions) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if opts.Kubeconfig == "" && opts.InCluster && opts.Context == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	} else {
		rules := &clientcmd.ClientConfigLoadingRules{}
		if opts.Kubeconfig != "" {
			rules.Precedence = filepath.SplitList(opts.Kubeconfig)
		} else {
			rules.Precedence = []string{clientcmd.RecommendedHomeFile}
		}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig: %w", err)
		}
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = 50
	}
	if cfg.Burst == 0 {
		cfg.Burst = 100
	}
	cfg.UserAgent = opts.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "fluxgate"
	}
	return cfg, nil
}
