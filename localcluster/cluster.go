// Package localcluster runs a real, local GitOps cluster without Docker:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, KWOK
// (simulated nodes and pod status, so Deployments really roll out) and
// Flux's source-controller and kustomize-controller, all built from pinned Go
// modules on first use and supervised as child processes on 127.0.0.1. It
// also serves the Git repositories it hosts over smart HTTP, seeds a demo
// repository, and is the end-to-end test rig (see clustertest).
//
// fluxgate talks to it exactly as to any cluster, through the kubeconfig it
// writes into its data directory.
package localcluster

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fluxgate/fluxgate/config/crd"
	"github.com/fluxgate/fluxgate/localcluster/demo"
	"github.com/fluxgate/fluxgate/localcluster/gitserver"
)

// Phase is where the local cluster as a whole stands.
type Phase string

// Phases of the local cluster.
const (
	PhaseStopped  Phase = "stopped"
	PhaseBuilding Phase = "building"
	PhaseStarting Phase = "starting"
	PhaseReady    Phase = "ready"
	PhaseFailed   Phase = "failed"
)

// ErrNotReady is returned (wrapped, with the phase) by cluster-backed calls
// made while the local cluster is still building or starting.
var ErrNotReady = errors.New("local cluster starting")

// UnreadyAnnotation, set to "true" on a pod template, makes KWOK run the pods
// without ever reporting them Ready: the failure simulation for tests.
const UnreadyAnnotation = "localcluster.fluxgate.io/unready"

// FluxNamespace is the namespace the Flux controllers run for.
const FluxNamespace = "flux-system"

// ServiceCIDR and PodCIDR of the local cluster.
const (
	ServiceCIDR = "10.0.0.0/24"
	PodCIDR     = "10.244.0.0/16"
	serviceIP   = "10.0.0.1"
)

// ComponentStatus is the state of one component.
type ComponentStatus struct {
	Name     string         `json:"name"`
	Version  string         `json:"version,omitempty"`
	State    ComponentState `json:"state"`
	PID      int            `json:"pid,omitempty"`
	Restarts int            `json:"restarts,omitempty"`
	Error    string         `json:"error,omitempty"`
	Addr     string         `json:"addr,omitempty"`
	Log      string         `json:"log,omitempty"`
}

// Status is a snapshot of the local cluster, for /readyz and `cluster status`.
type Status struct {
	Phase      Phase             `json:"phase"`
	Message    string            `json:"message,omitempty"`
	Since      time.Time         `json:"since"`
	Kubeconfig string            `json:"kubeconfig"`
	GitURL     string            `json:"gitURL,omitempty"`
	PID        int               `json:"pid"`
	Components []ComponentStatus `json:"components"`
}

// Config configures a local cluster. Only DataDir is required.
type Config struct {
	// DataDir keeps everything of the cluster across restarts: etcd data,
	// certificates, the kubeconfig, logs, Flux artifacts, Git repositories.
	DataDir string
	// CacheDir holds the built binaries; DefaultCacheDir() when empty.
	CacheDir string
	// GitDir holds the bare repositories served over HTTP; DataDir/git when
	// empty.
	GitDir string
	// Progress receives human-readable progress lines; nil discards them.
	Progress io.Writer
	// Nodes is the number of KWOK nodes; 1 when zero.
	Nodes int
	// SkipDemo leaves the demo repository out.
	SkipDemo bool
}

// Cluster is a supervised local cluster. Create it with New, then Start.
type Cluster struct {
	cfg     Config
	builder *Builder
	pki     pki

	mu       sync.Mutex
	phase    Phase
	message  string
	since    time.Time
	started  bool
	procs    []*process
	building map[string]ComponentState
	gitState ComponentStatus
	restCfg  *rest.Config
	ports    ports
	cancel   context.CancelFunc
	unlock   func()
	gitSrv   *http.Server
	statusMu sync.Mutex

	git   *gitserver.Server
	ready chan struct{}
	done  chan struct{}
	err   error
}

// New checks cfg and returns a stopped cluster.
func New(cfg Config) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("local cluster: data dir required")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local cluster data dir: %w", err)
	}
	cfg.DataDir = abs
	if cfg.CacheDir == "" {
		if cfg.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if cfg.GitDir == "" {
		cfg.GitDir = filepath.Join(cfg.DataDir, "git")
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	gs, err := gitserver.New(cfg.GitDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:      cfg,
		builder:  &Builder{CacheDir: cfg.CacheDir, Progress: cfg.Progress},
		pki:      pki{dir: filepath.Join(cfg.DataDir, "pki")},
		phase:    PhaseStopped,
		since:    time.Now(),
		building: map[string]ComponentState{},
		gitState: ComponentStatus{Name: "git-server", State: StatePending},
		git:      gs,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, b := range Binaries() {
		c.building[b.Name] = StatePending
	}
	return c, nil
}

// KubeconfigPath is the admin kubeconfig the cluster writes (valid once the
// cluster is ready).
func (c *Cluster) KubeconfigPath() string { return c.pki.kubeconfig() }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.cfg.DataDir }

// Git is the server of the hosted repositories. Its handler is already
// served on loopback at GitBaseURL; fluxgate may mount it on its own mux too.
func (c *Cluster) Git() *gitserver.Server { return c.git }

// GitBaseURL is the loopback URL the repositories are served under, e.g.
// http://127.0.0.1:40123; empty before Start has allocated the port.
func (c *Cluster) GitBaseURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ports.Git == 0 {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d", c.ports.Git)
}

// GitURL is the URL of repository name, for both pushing and Flux
// GitRepository objects (the controllers run on the same host).
func (c *Cluster) GitURL(name string) string {
	return c.GitBaseURL() + "/" + strings.TrimSuffix(name, ".git") + ".git"
}

// Ready is closed once every component is ready.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// Done is closed when the cluster has stopped or failed for good.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Wait blocks until the cluster is ready (nil), has failed (the error), or
// ctx ends.
func (c *Cluster) Wait(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return c.err
		}
		return errors.New("local cluster stopped")
	case <-ctx.Done():
		return fmt.Errorf("wait for local cluster: %w", ctx.Err())
	}
}

// RESTConfig returns an admin config for the cluster, or an error wrapping
// ErrNotReady while it is building or starting.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != PhaseReady || c.restCfg == nil {
		if c.phase == PhaseFailed {
			return nil, fmt.Errorf("local cluster failed: %s", c.message)
		}
		return nil, fmt.Errorf("%w (%s)", ErrNotReady, c.phase)
	}
	return rest.CopyConfig(c.restCfg), nil
}

// Status reports the cluster and each component.
func (c *Cluster) Status() Status {
	c.mu.Lock()
	st := Status{
		Phase: c.phase, Message: c.message, Since: c.since,
		Kubeconfig: c.pki.kubeconfig(), PID: os.Getpid(),
	}
	if c.ports.Git != 0 {
		st.GitURL = fmt.Sprintf("http://127.0.0.1:%d", c.ports.Git)
	}
	procs := append([]*process(nil), c.procs...)
	building := make(map[string]ComponentState, len(c.building))
	for k, v := range c.building {
		building[k] = v
	}
	gitState := c.gitState
	c.mu.Unlock()

	seen := map[string]bool{}
	for _, p := range procs {
		cs := p.status()
		seen[cs.Name] = true
		st.Components = append(st.Components, cs)
		if st.Phase == PhaseReady && cs.State == StateFailed {
			st.Phase = PhaseFailed
			st.Message = fmt.Sprintf("%s failed: %s", cs.Name, cs.Error)
		}
	}
	for _, b := range Binaries() {
		if !seen[b.Name] {
			st.Components = append(st.Components, ComponentStatus{Name: b.Name, Version: b.Version, State: building[b.Name]})
		}
	}
	st.Components = append(st.Components, gitState)
	return st
}

// PIDs returns the process ids of the running children.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, cs := range c.Status().Components {
		if cs.PID != 0 && cs.PID != os.Getpid() {
			pids = append(pids, cs.PID)
		}
	}
	return pids
}

func (c *Cluster) setPhase(p Phase, msg string) {
	c.mu.Lock()
	c.phase, c.message, c.since = p, msg, time.Now()
	c.mu.Unlock()
	c.saveStatus()
	if msg != "" {
		fmt.Fprintf(c.cfg.Progress, "local cluster %s: %s\n", p, msg)
	} else {
		fmt.Fprintf(c.cfg.Progress, "local cluster %s\n", p)
	}
}

// saveStatus writes status.json for `cluster status` run from another
// process.
func (c *Cluster) saveStatus() {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	data, err := json.MarshalIndent(c.Status(), "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(c.cfg.DataDir, ".status.json.tmp")
	if os.WriteFile(tmp, data, 0o644) == nil {
		_ = os.Rename(tmp, filepath.Join(c.cfg.DataDir, "status.json"))
	}
}

// Start builds what is missing and brings the cluster up in the background;
// it returns at once. Use Ready, Wait or Status to follow it, and Stop to end
// it (cancelling ctx stops it too). Only one Cluster may use a data dir at a
// time.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("local cluster already started")
	}
	c.started = true
	c.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(c.cfg.DataDir, "logs"), 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := tryLock(filepath.Join(c.cfg.DataDir, "cluster.lock"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.cfg.DataDir, "cluster.pid"), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		unlock()
		return fmt.Errorf("write pid file: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.cancel, c.unlock = cancel, unlock
	c.mu.Unlock()
	go c.run(ctx)
	return nil
}

func (c *Cluster) run(ctx context.Context) {
	if err := c.bringUp(ctx); err != nil {
		if ctx.Err() == nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			c.setPhase(PhaseFailed, err.Error())
		}
		c.shutdown()
		close(c.done)
		return
	}
	c.setPhase(PhaseReady, "")
	close(c.ready)
	<-ctx.Done()
	c.shutdown()
	close(c.done)
}

// Stop stops every child (SIGTERM, then SIGKILL after a grace period) and
// the Git server, and waits for them, or for ctx.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop local cluster: %w", ctx.Err())
	}
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	gitSrv := c.gitSrv
	unlock := c.unlock
	c.mu.Unlock()
	// Reverse start order: controllers first, then the API server, etcd last.
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.spec.name == "kube-apiserver" || p.spec.name == "etcd" {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(10 * time.Second) }()
	}
	wg.Wait()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		for _, p := range procs {
			if p.spec.name == name {
				p.stop(15 * time.Second)
			}
		}
	}
	if gitSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = gitSrv.Shutdown(sctx)
		cancel()
		c.mu.Lock()
		c.gitState.State = StateStopped
		c.mu.Unlock()
	}
	c.mu.Lock()
	failed := c.phase == PhaseFailed
	c.mu.Unlock()
	if !failed {
		c.setPhase(PhaseStopped, "")
	} else {
		c.saveStatus()
	}
	_ = os.Remove(filepath.Join(c.cfg.DataDir, "cluster.pid"))
	if unlock != nil {
		unlock()
	}
}

// bringUp builds, configures and starts everything, in dependency order.
func (c *Cluster) bringUp(ctx context.Context) error {
	c.setPhase(PhaseBuilding, "")
	paths, err := c.buildAll(ctx)
	if err != nil {
		return err
	}
	c.setPhase(PhaseStarting, "")
	if err := c.pki.ensure(); err != nil {
		return err
	}
	pts, err := loadPorts(filepath.Join(c.cfg.DataDir, "ports.json"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ports = pts
	c.mu.Unlock()
	if err := c.pki.writeKubeconfig(pts.APIServer); err != nil {
		return err
	}
	if err := c.startGit(pts.Git); err != nil {
		return err
	}
	if !c.cfg.SkipDemo {
		if _, err := c.git.Seed(demo.RepoName, demo.Files(), demo.CommitMessage); err != nil {
			return fmt.Errorf("seed demo repository: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(c.cfg.DataDir, "flux", "source-controller"), 0o755); err != nil {
		return fmt.Errorf("create flux storage: %w", err)
	}
	specs := c.specs(paths, pts)
	if err := c.startProc(ctx, ctx, specs["etcd"]); err != nil {
		return err
	}
	if err := c.startProc(ctx, ctx, specs["kube-apiserver"]); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.pki.kubeconfig())
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if err := crd.Install(ctx, cfg); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	namespaces := []string{FluxNamespace}
	if !c.cfg.SkipDemo {
		for _, env := range demo.Environments() {
			namespaces = append(namespaces, demo.Namespace(env))
		}
	}
	for _, ns := range namespaces {
		if err := ensureNamespace(ctx, cs, ns); err != nil {
			return err
		}
	}
	if err := c.ensureNodes(ctx, cs); err != nil {
		return err
	}
	kwok := specs["kwok"]
	kwok.ready = func(ctx context.Context) error { return nodesReady(ctx, cs, c.cfg.Nodes) }
	specs["kwok"] = kwok
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kwok", "source-controller", "kustomize-controller"} {
		spec := specs[name]
		g.Go(func() error { return c.startProc(ctx, gctx, spec) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	c.mu.Lock()
	c.restCfg = cfg
	c.mu.Unlock()
	return nil
}

func (c *Cluster) buildAll(ctx context.Context) (map[string]string, error) {
	bins := Binaries()
	for _, b := range bins {
		if c.builder.Cached(b) {
			c.setBuilding(b.Name, StatePending)
		}
	}
	paths := map[string]string{}
	for _, b := range bins {
		if !c.builder.Cached(b) {
			c.setBuilding(b.Name, StateBuilding)
		}
		p, err := c.builder.Ensure(ctx, []Binary{b})
		if err != nil {
			c.setBuilding(b.Name, StateFailed)
			return nil, err
		}
		c.setBuilding(b.Name, StatePending)
		paths[b.Name] = p[b.Name]
	}
	return paths, nil
}

func (c *Cluster) setBuilding(name string, s ComponentState) {
	c.mu.Lock()
	c.building[name] = s
	c.mu.Unlock()
	c.saveStatus()
}

// startProc starts one child, waiting for it with readyCtx; the child is
// supervised for as long as life lasts.
func (c *Cluster) startProc(life, readyCtx context.Context, spec procSpec) error {
	p := newProcess(spec, c.saveStatus)
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	if err := p.start(life, readyCtx); err != nil {
		return err
	}
	fmt.Fprintf(c.cfg.Progress, "%s ready (pid %d)\n", spec.name, p.status().PID)
	return nil
}

func (c *Cluster) startGit(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("git server listen: %w", err)
	}
	srv := &http.Server{Handler: c.git, ReadHeaderTimeout: 10 * time.Second}
	c.mu.Lock()
	c.gitSrv = srv
	c.gitState = ComponentStatus{Name: "git-server", State: StateReady, PID: os.Getpid(), Addr: ln.Addr().String()}
	c.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.mu.Lock()
			c.gitState.State, c.gitState.Error = StateFailed, err.Error()
			c.mu.Unlock()
			c.saveStatus()
		}
	}()
	return nil
}

// specs returns how to run each child.
func (c *Cluster) specs(paths map[string]string, pts ports) map[string]procSpec {
	d := c.cfg.DataDir
	kc := c.pki.kubeconfig()
	logPath := func(n string) string { return filepath.Join(d, "logs", n+".log") }
	versions := map[string]string{}
	for _, b := range Binaries() {
		versions[b.Name] = b.Version
	}
	spec := func(name, addr string, args []string, env []string, ready func(context.Context) error) procSpec {
		return procSpec{name: name, version: versions[name], path: paths[name], args: args, env: env,
			logPath: logPath(name), addr: addr, ready: ready}
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", pts.EtcdClient)
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", pts.EtcdPeer)
	fluxEnv := []string{"KUBECONFIG=" + kc, "RUNTIME_NAMESPACE=" + FluxNamespace}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	out := map[string]procSpec{
		"etcd": spec("etcd", addr(pts.EtcdClient), []string{
			"--name=fluxgate", "--data-dir=" + filepath.Join(d, "etcd"),
			"--listen-client-urls=" + etcdClient, "--advertise-client-urls=" + etcdClient,
			"--listen-peer-urls=" + etcdPeer, "--initial-advertise-peer-urls=" + etcdPeer,
			"--initial-cluster=fluxgate=" + etcdPeer, "--log-level=warn",
			// A local, disposable cluster: skip fsync for speed.
			"--unsafe-no-fsync=true",
		}, nil, httpReady(etcdClient+"/health")),
		"kube-apiserver": spec("kube-apiserver", addr(pts.APIServer), []string{
			"--etcd-servers=" + etcdClient,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", pts.APIServer),
			"--cert-dir=" + filepath.Join(d, "pki", "apiserver"),
			"--tls-cert-file=" + c.pki.serverCert(), "--tls-private-key-file=" + c.pki.serverKey(),
			"--client-ca-file=" + c.pki.caCert(),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + c.pki.saPub(), "--service-account-signing-key-file=" + c.pki.saKey(),
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--authorization-mode=RBAC", "--allow-privileged=true",
			"--enable-priority-and-fairness=false", "--profiling=false",
			// Loopback cannot be advertised in the kubernetes Service endpoints.
			"--endpoint-reconciler-type=none",
		}, nil, c.apiserverReady),
		"kube-controller-manager": spec("kube-controller-manager", addr(pts.ControllerManager), []string{
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", pts.ControllerManager),
			"--cert-dir=" + filepath.Join(d, "pki", "controller-manager"),
			"--leader-elect=false", "--cluster-name=fluxgate",
			"--controllers=deployment-controller,replicaset-controller,namespace-controller,garbage-collector-controller," +
				"serviceaccount-controller,serviceaccount-token-controller,clusterrole-aggregation-controller," +
				"root-ca-certificate-publisher-controller,endpointslice-controller,pod-garbage-collector-controller," +
				"node-lifecycle-controller",
			"--service-account-private-key-file=" + c.pki.saKey(), "--root-ca-file=" + c.pki.caCert(),
			"--use-service-account-credentials=false", "--profiling=false",
		}, nil, httpReady(fmt.Sprintf("https://127.0.0.1:%d/healthz", pts.ControllerManager))),
		"kube-scheduler": spec("kube-scheduler", addr(pts.Scheduler), []string{
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", pts.Scheduler),
			"--cert-dir=" + filepath.Join(d, "pki", "scheduler"),
			"--leader-elect=false", "--profiling=false",
		}, nil, httpReady(fmt.Sprintf("https://127.0.0.1:%d/healthz", pts.Scheduler))),
		"kwok": spec("kwok", addr(pts.Kwok), []string{
			"--kubeconfig=" + kc, "--config=" + filepath.Join(d, "kwok-stages.yaml"),
			"--manage-all-nodes=true", "--cidr=" + PodCIDR, "--node-ip=10.240.0.1",
			fmt.Sprintf("--server-address=127.0.0.1:%d", pts.Kwok),
			// Renew node leases (the heartbeat-with-lease stage relies on
			// them); without, the node-lifecycle controller marks the node
			// NotReady every ~50 s and with it every pod.
			"--node-lease-duration-seconds=40",
		}, []string{"HOME=" + d}, nil),
		"source-controller": spec("source-controller", addr(pts.SourceStorage), []string{
			"--storage-path=" + filepath.Join(d, "flux", "source-controller"),
			"--storage-addr=" + addr(pts.SourceStorage), "--storage-adv-addr=" + addr(pts.SourceStorage),
			"--health-addr=" + addr(pts.SourceHealth), "--metrics-addr=" + addr(pts.SourceMetrics),
			"--enable-leader-election=false", "--log-level=info",
		}, fluxEnv, httpReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", pts.SourceHealth))),
		"kustomize-controller": spec("kustomize-controller", addr(pts.KustomizeHealth), []string{
			"--health-addr=" + addr(pts.KustomizeHealth), "--metrics-addr=" + addr(pts.KustomizeMetrics),
			"--enable-leader-election=false", "--log-level=info",
			"--feature-gates=CancelHealthCheckOnNewRevision=true",
		}, fluxEnv, httpReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", pts.KustomizeHealth))),
	}
	return out
}

// apiserverReady polls /readyz with the admin credentials.
func (c *Cluster) apiserverReady(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.pki.kubeconfig())
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", nil
	})
}

// httpReady polls url until it answers 200 (TLS not verified: the
// components serve self-signed health endpoints on loopback).
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe
		}}
		defer client.CloseIdleConnections()
		return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return false, nil
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	}
}

//go:embed stages/*.yaml
var stages embed.FS

// writeStages writes KWOK's Stage definitions (upstream node and pod stages
// plus fluxgate's pod-unready) into one multi-document file.
func writeStages(path string) error {
	entries, err := fs.ReadDir(stages, "stages")
	if err != nil {
		return fmt.Errorf("read stages: %w", err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := stages.ReadFile("stages/" + e.Name())
		if err != nil {
			return fmt.Errorf("read stage %s: %w", e.Name(), err)
		}
		b.WriteString("---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write stages: %w", err)
	}
	return nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// NodeName is the name of the i-th KWOK node.
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// ensureNodes creates the KWOK Node objects (KWOK manages every node) and
// writes the stage file KWOK reads.
func (c *Cluster) ensureNodes(ctx context.Context, cs kubernetes.Interface) error {
	if err := writeStages(filepath.Join(c.cfg.DataDir, "kwok-stages.yaml")); err != nil {
		return err
	}
	for i := 0; i < c.cfg.Nodes; i++ {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: NodeName(i),
				Labels: map[string]string{
					"type":                   "kwok",
					"kubernetes.io/hostname": NodeName(i),
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
				},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, n int) error {
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for i := 0; i < n; i++ {
			node, err := cs.CoreV1().Nodes().Get(ctx, NodeName(i), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ready := false
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if !ready {
				return false, nil
			}
		}
		return true, nil
	})
}

// ports are the loopback ports of the components, kept in ports.json so
// that the kubeconfig, etcd's peer URL and GitRepository URLs stay valid
// across restarts; a port that has been taken meanwhile is replaced.
type ports struct {
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	Kwok              int `json:"kwok"`
	SourceStorage     int `json:"sourceStorage"`
	SourceHealth      int `json:"sourceHealth"`
	SourceMetrics     int `json:"sourceMetrics"`
	KustomizeHealth   int `json:"kustomizeHealth"`
	KustomizeMetrics  int `json:"kustomizeMetrics"`
	Git               int `json:"git"`
}

func loadPorts(path string) (ports, error) {
	var p ports
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &p)
	}
	fields := []*int{&p.EtcdClient, &p.EtcdPeer, &p.APIServer, &p.ControllerManager, &p.Scheduler, &p.Kwok,
		&p.SourceStorage, &p.SourceHealth, &p.SourceMetrics, &p.KustomizeHealth, &p.KustomizeMetrics, &p.Git}
	used := map[int]bool{}
	for _, f := range fields {
		if *f != 0 && !used[*f] && portFree(*f) {
			used[*f] = true
			continue
		}
		for {
			n, err := freePort()
			if err != nil {
				return p, err
			}
			if !used[n] {
				*f = n
				used[n] = true
				break
			}
		}
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return p, fmt.Errorf("encode ports: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return p, fmt.Errorf("write ports: %w", err)
	}
	return p, nil
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tryLock takes an exclusive flock on path or fails at once.
func tryLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("local cluster data dir %s is in use by another process", filepath.Dir(path))
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
