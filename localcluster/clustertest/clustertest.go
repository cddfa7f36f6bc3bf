// Package clustertest is the end-to-end test rig: it starts one local
// cluster (real control plane, real Flux controllers, KWOK nodes, the Git
// server) per test binary and hands tests a *rest.Config, a controller-runtime
// client and Git remotes.
//
//	var env *clustertest.Env
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Run(m, &env)) }
//
//	func TestX(t *testing.T) {
//		e := env.Require(t)
//		remote := e.NewRepo(t, "app", demo.Files())
//		...
//	}
//
// When the cluster cannot be started (binaries cannot be built, or they are
// not cached and the test timeout is too short to build them) tests skip with
// the reason, unless FLUXGATE_REQUIRE_CLUSTER=1 (CI), where they fail.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate/localcluster"
)

// RequireEnv is the environment variable that turns "cluster unavailable"
// from a skip into a failure.
const RequireEnv = "FLUXGATE_REQUIRE_CLUSTER"

// minBuildTimeout is the test timeout below which a cold build is not
// attempted (the first build takes several minutes on 2 cores).
const minBuildTimeout = 30 * time.Minute

// Env is the running local cluster shared by a test binary.
type Env struct {
	// Cluster is the supervised cluster.
	Cluster *localcluster.Cluster
	// Config is an admin config for the cluster.
	Config *rest.Config
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// StartTime is how long the cluster took to become ready.
	StartTime time.Duration

	unavailable string
}

// Require returns e, or skips tb (fails it when FLUXGATE_REQUIRE_CLUSTER=1)
// when the cluster is unavailable.
func (e *Env) Require(tb testing.TB) *Env {
	tb.Helper()
	switch {
	case e == nil:
		tb.Fatal("clustertest: Run was not called from TestMain")
	case e.unavailable != "" && os.Getenv(RequireEnv) == "1":
		tb.Fatalf("local cluster unavailable (%s=1): %s", RequireEnv, e.unavailable)
	case e.unavailable != "":
		tb.Skipf("local cluster unavailable (set %s=1 to fail instead): %s", RequireEnv, e.unavailable)
	}
	return e
}

// Run starts the cluster, runs the tests and stops the cluster; it returns
// the exit code for os.Exit. *env is set before the tests run.
func Run(m *testing.M, env **Env) int {
	flag.Parse()
	e, err := start()
	if err != nil {
		msg := err.Error()
		if os.Getenv(RequireEnv) == "1" {
			fmt.Fprintf(os.Stderr, "clustertest: local cluster unavailable: %s\n", msg)
			return 1
		}
		fmt.Fprintf(os.Stderr, "clustertest: local cluster unavailable, cluster tests will skip: %s\n", msg)
		*env = &Env{unavailable: msg}
		return m.Run()
	}
	*env = e
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: stop: %v\n", err)
	}
	if code == 0 {
		_ = os.RemoveAll(e.Cluster.DataDir())
	} else {
		fmt.Fprintf(os.Stderr, "clustertest: tests failed; cluster data and logs kept in %s\n", e.Cluster.DataDir())
	}
	return code
}

func start() (*Env, error) {
	cacheDir, err := localcluster.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	b := &localcluster.Builder{CacheDir: cacheDir}
	var missing []string
	for _, bin := range localcluster.Binaries() {
		if !b.Cached(bin) {
			missing = append(missing, bin.Name)
		}
	}
	if len(missing) > 0 && os.Getenv(RequireEnv) != "1" {
		if f := flag.Lookup("test.timeout"); f != nil {
			if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 && d < minBuildTimeout {
				return nil, fmt.Errorf("binaries not built yet (%s) and -timeout %s is too short to build them: "+
					"run \"fluxgate cluster build\" or go test with -timeout 60m", strings.Join(missing, ", "), d)
			}
		}
	}
	dir, err := os.MkdirTemp("", "fluxgate-cluster-")
	if err != nil {
		return nil, fmt.Errorf("cluster data dir: %w", err)
	}
	c, err := localcluster.New(localcluster.Config{DataDir: dir, CacheDir: cacheDir, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Minute)
	defer cancel()
	if err := c.Wait(wctx); err != nil {
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		defer scancel()
		_ = c.Stop(sctx)
		if logs, _ := os.ReadDir(filepath.Join(dir, "logs")); len(logs) > 0 {
			return nil, fmt.Errorf("%w (logs kept in %s)", err, filepath.Join(dir, "logs"))
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return &Env{Cluster: c, Config: cfg, Kubeconfig: c.KubeconfigPath(), StartTime: time.Since(begin)}, nil
}

// Scheme has the core Kubernetes types and Flux's source and kustomize APIs.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	return s, nil
}

// Client returns a controller-runtime client for the cluster (Scheme()).
func (e *Env) Client(tb testing.TB) client.Client {
	tb.Helper()
	s, err := Scheme()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := client.New(e.Config, client.Options{Scheme: s})
	if err != nil {
		tb.Fatalf("client: %v", err)
	}
	return c
}

// Namespace creates a namespace with a unique name starting with prefix and
// deletes it when tb ends.
func (e *Env) Namespace(tb testing.TB, prefix string) string {
	tb.Helper()
	c := e.Client(tb)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + suffix()}}
	if err := c.Create(context.Background(), ns); err != nil {
		tb.Fatalf("create namespace: %v", err)
	}
	tb.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return ns.Name
}

// Remote is a repository on the cluster's Git server.
type Remote struct {
	// Name of the repository on the server.
	Name string
	// PushURL is where tests (and fluxgate) push.
	PushURL string
	// FluxURL is the URL to put in a GitRepository: source-controller runs
	// on the host, so it is the same loopback URL.
	FluxURL string
	// Dir is the bare repository on disk.
	Dir string
}

// NewRepo creates a repository with a unique name starting with prefix,
// seeded with files in one commit on main, removed when tb ends.
func (e *Env) NewRepo(tb testing.TB, prefix string, files fs.FS) Remote {
	tb.Helper()
	name := prefix + "-" + suffix()
	if _, err := e.Cluster.Git().Seed(name, files, "Initial commit"); err != nil {
		tb.Fatalf("seed repository: %v", err)
	}
	dir := e.Cluster.Git().RepoDir(name)
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	url := e.Cluster.GitURL(name)
	return Remote{Name: name, PushURL: url, FluxURL: url, Dir: dir}
}

// Commit clones the remote's main branch, lets edit change the work tree,
// commits everything with msg and pushes; it returns the new commit's SHA.
func (r Remote) Commit(ctx context.Context, msg string, edit func(wt billy.Filesystem) error) (string, error) {
	wt := memfs.New()
	repo, err := git.CloneContext(ctx, memory.NewStorage(), wt, &git.CloneOptions{URL: r.PushURL})
	if err != nil {
		return "", fmt.Errorf("clone %s: %w", r.Name, err)
	}
	if err := edit(wt); err != nil {
		return "", fmt.Errorf("edit %s: %w", r.Name, err)
	}
	tree, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("worktree: %w", err)
	}
	if err := tree.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", fmt.Errorf("add: %w", err)
	}
	sig := &object.Signature{Name: "clustertest", Email: "clustertest@localhost", When: time.Now()}
	sha, err := tree.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	if err := repo.PushContext(ctx, &git.PushOptions{}); err != nil {
		return "", fmt.Errorf("push %s: %w", r.Name, err)
	}
	return sha.String(), nil
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
