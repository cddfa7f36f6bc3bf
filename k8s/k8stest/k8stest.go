// Package k8stest runs a real kube-apiserver and etcd (controller-runtime
// envtest) with the Flux CRDs installed, for integration tests of the k8s
// adapter and of services that use it.
//
// The binaries are the ones the local cluster builds from Go modules
// (localcluster.Builder, kube-apiserver v1.37.2 and etcd v3.7.0, cached in
// localcluster.DefaultCacheDir()). When they are not built yet, tests skip
// with a message; with FLUXGATE_REQUIRE_CLUSTER=1 (CI) they are built, and a
// failure to start fails the tests.
//
//	var env *k8stest.Env
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Run(m, &env)) }
//
//	func TestX(t *testing.T) {
//		e := env.Require(t)
//		ns := e.Namespace(t, "x")
//		...
//	}
package k8stest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxgate/fluxgate/config/crd"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/localcluster"
)

// RequireEnv turns "control plane unavailable" from a skip into a failure
// (and lets the binaries be built when missing).
const RequireEnv = "FLUXGATE_REQUIRE_CLUSTER"

// Options tune a control plane.
type Options struct {
	// APIServerArgs are extra kube-apiserver flags, e.g.
	// {"watch-cache": {"false"}}.
	APIServerArgs map[string][]string
}

// Env is a running kube-apiserver + etcd with the Flux CRDs.
type Env struct {
	// Config is an admin config for the API server.
	Config *rest.Config
	// Client uses k8s.NewScheme.
	Client client.Client
	// StartTime is how long the control plane took to start.
	StartTime time.Duration

	env         *envtest.Environment
	unavailable string
}

// binaries returns the paths of etcd and kube-apiserver from the local
// cluster's binary cache, building them only under FLUXGATE_REQUIRE_CLUSTER=1.
func binaries(ctx context.Context) (etcd, apiserver string, err error) {
	dir, err := localcluster.DefaultCacheDir()
	if err != nil {
		return "", "", err
	}
	b := &localcluster.Builder{CacheDir: dir, Progress: os.Stderr}
	var want []localcluster.Binary
	for _, bin := range localcluster.Binaries() {
		if bin.Name == "etcd" || bin.Name == "kube-apiserver" {
			want = append(want, bin)
		}
	}
	var missing []string
	for _, bin := range want {
		if !b.Cached(bin) {
			missing = append(missing, bin.Name+" "+bin.Version)
		}
	}
	if len(missing) > 0 && os.Getenv(RequireEnv) != "1" {
		return "", "", fmt.Errorf("%v not built in %s: run `fluxgate cluster build`, or set %s=1 to build them", missing, dir, RequireEnv)
	}
	paths, err := b.Ensure(ctx, want)
	if err != nil {
		return "", "", fmt.Errorf("build control plane binaries: %w", err)
	}
	return paths["etcd"], paths["kube-apiserver"], nil
}

// Start starts a control plane and installs the Flux CRDs.
func Start(ctx context.Context, opts Options) (*Env, error) {
	etcdPath, apiserverPath, err := binaries(ctx)
	if err != nil {
		return nil, err
	}
	crds, err := crd.Objects()
	if err != nil {
		return nil, fmt.Errorf("flux crds: %w", err)
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		Scheme:                   scheme,
		CRDs:                     crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath}
	te.ControlPlane.APIServer = &envtest.APIServer{Path: apiserverPath}
	for k, v := range opts.APIServerArgs {
		te.ControlPlane.APIServer.Configure().Set(k, v...)
	}
	begin := time.Now()
	cfg, err := te.Start()
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Env{Config: cfg, Client: c, env: te, StartTime: time.Since(begin)}, nil
}

// Stop stops the control plane and removes its data.
func (e *Env) Stop() error {
	if e == nil || e.env == nil {
		return nil
	}
	return e.env.Stop()
}

// Run starts one control plane for a test binary, runs the tests and stops
// it; it returns the exit code for os.Exit. *env is set before the tests
// run; when the control plane is unavailable Require skips (or fails).
func Run(m *testing.M, env **Env) int {
	flag.Parse()
	if testing.Short() {
		*env = &Env{unavailable: "-short"}
		return m.Run()
	}
	e, err := Start(context.Background(), Options{})
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			fmt.Fprintf(os.Stderr, "k8stest: control plane unavailable: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "k8stest: control plane unavailable, integration tests will skip: %v\n", err)
		*env = &Env{unavailable: err.Error()}
		return m.Run()
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "k8stest: stop: %v\n", err)
	}
	return code
}

// Require returns e, or skips tb (fails it when FLUXGATE_REQUIRE_CLUSTER=1)
// when the control plane is unavailable.
func (e *Env) Require(tb testing.TB) *Env {
	tb.Helper()
	switch {
	case e == nil:
		tb.Fatal("k8stest: Run was not called from TestMain")
	case e.unavailable != "" && e.unavailable != "-short" && os.Getenv(RequireEnv) == "1":
		tb.Fatalf("kube-apiserver unavailable (%s=1): %s", RequireEnv, e.unavailable)
	case e.unavailable != "":
		tb.Skipf("kube-apiserver unavailable (set %s=1 to fail instead): %s", RequireEnv, e.unavailable)
	}
	return e
}

// StartForTest starts a dedicated control plane for one test (for flags the
// shared one must not have), stopped when tb ends; it skips or fails like
// Require when unavailable.
func StartForTest(tb testing.TB, opts Options) *Env {
	tb.Helper()
	if testing.Short() {
		tb.Skip("kube-apiserver: -short")
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		(&Env{unavailable: err.Error()}).Require(tb)
	}
	tb.Cleanup(func() { _ = e.Stop() })
	return e
}

// Namespace creates a namespace with a unique name starting with prefix and
// deletes it when tb ends.
func (e *Env) Namespace(tb testing.TB, prefix string) string {
	tb.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + Suffix()}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		tb.Fatalf("create namespace: %v", err)
	}
	tb.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// Suffix is a short random string for unique names.
func Suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Proxy is a TCP proxy in front of the API server whose connections a test
// can cut, to break watches the way a network failure does.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// NewProxy starts a proxy to e's API server and returns it with a config
// that goes through it. It stops when tb ends.
func (e *Env) NewProxy(tb testing.TB) (*Proxy, *rest.Config) {
	tb.Helper()
	u, err := url.Parse(e.Config.Host)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	go p.serve()
	tb.Cleanup(func() { _ = ln.Close(); p.Cut() })
	cfg := rest.CopyConfig(e.Config)
	cfg.Host = "https://" + ln.Addr().String()
	return p, cfg
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[in] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			_ = in.Close()
			continue
		}
		go p.pipe(in)
	}
}

func (p *Proxy) pipe(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = in.Close()
		return
	}
	p.mu.Lock()
	p.conns[out] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	_ = in.Close()
	_ = out.Close()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
