package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKubeconfig = `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: {server: "https://dev.example.com:6443"}
- name: prod
  cluster: {server: "https://prod.example.com:6443"}
users:
- name: u
  user: {token: abc}
contexts:
- name: dev
  context: {cluster: dev, user: u}
- name: prod
  context: {cluster: prod, user: u}
`

func TestRESTConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := RESTConfig(ConfigOptions{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://dev.example.com:6443" || cfg.QPS != 50 || cfg.Burst != 100 || cfg.UserAgent != "fluxgate" {
		t.Fatalf("config = host %s qps %v burst %d ua %q", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
	// A context other than the current one; a KUBECONFIG-style list.
	cfg, err = RESTConfig(ConfigOptions{Kubeconfig: filepath.Join(dir, "missing") + string(os.PathListSeparator) + path, Context: "prod", QPS: 5})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://prod.example.com:6443" || cfg.QPS != 5 {
		t.Fatalf("prod config = %s %v", cfg.Host, cfg.QPS)
	}
	if _, err := RESTConfig(ConfigOptions{Kubeconfig: path, Context: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown context: %v", err)
	}
	// In-cluster outside a pod fails with a clear error.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := RESTConfig(ConfigOptions{InCluster: true}); err == nil || !strings.HasPrefix(err.Error(), "in-cluster config") {
		t.Fatalf("in-cluster: %v", err)
	}
}
