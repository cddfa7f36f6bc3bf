// Package e2e runs the local cluster end to end: the demo repository applied
// by the real Flux controllers, commits pushed to the local Git server rolled
// out after a reconcile request, the failure path (HealthCheckFailed), and
// process supervision (no child left after a stop or a crash).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-billy/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate/localcluster"
	"github.com/fluxgate/fluxgate/localcluster/clustertest"
	"github.com/fluxgate/fluxgate/localcluster/demo"
)

var env *clustertest.Env

// helperEnv makes the test binary act as `fluxgate cluster up` (for the
// supervision tests, which kill it).
const helperEnv = "FLUXGATE_E2E_HELPER_DATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := localcluster.RunCLI(ctx, []string{"up", "--data-dir", dir}, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(clustertest.Run(m, &env))
}

// app is one environment of the demo repository wired to Flux in its own
// namespace.
type app struct {
	ns     string
	remote clustertest.Remote
	c      client.Client
	repo   *sourcev1.GitRepository
	ks     *kustomizev1.Kustomization
}

// newApp pushes a copy of the demo repository and creates a GitRepository and
// a Kustomization (with a health check on the Deployment) for the
// development overlay.
func newApp(t *testing.T, e *clustertest.Env, timeout time.Duration) *app {
	t.Helper()
	ctx := context.Background()
	a := &app{c: e.Client(t), ns: e.Namespace(t, "e2e"), remote: e.NewRepo(t, "demo", demo.Files())}
	a.repo = &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: a.ns},
		Spec: sourcev1.GitRepositorySpec{
			URL:       a.remote.FluxURL,
			Interval:  metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			Timeout:   &metav1.Duration{Duration: 20 * time.Second},
		},
	}
	a.ks = &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-development", Namespace: a.ns},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: 10 * time.Minute},
			RetryInterval:   &metav1.Duration{Duration: 5 * time.Second},
			Timeout:         &metav1.Duration{Duration: timeout},
			Path:            demo.OverlayPath("development"),
			Prune:           true,
			TargetNamespace: a.ns,
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: a.repo.Name},
			HealthChecks: []meta.NamespacedObjectKindReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: demo.DeploymentName, Namespace: a.ns,
			}},
		},
	}
	for _, obj := range []client.Object{a.repo, a.ks} {
		if err := a.c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
	return a
}

func (a *app) readyCondition(ctx context.Context, obj client.Object) (*metav1.Condition, error) {
	if err := a.c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return nil, err
	}
	var conds []metav1.Condition
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		conds = o.Status.Conditions
	case *kustomizev1.Kustomization:
		conds = o.Status.Conditions
	}
	return apimeta.FindStatusCondition(conds, meta.ReadyCondition), nil
}

// waitReady waits for the GitRepository and Kustomization to be Ready, the
// Kustomization at revision (when not empty).
func (a *app) waitReady(t *testing.T, revision string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	poll(t, timeout, "GitRepository Ready", func() (bool, string) {
		c, err := a.readyCondition(ctx, a.repo)
		if err != nil || c == nil {
			return false, fmt.Sprint(err)
		}
		return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
	})
	poll(t, timeout, "Kustomization Ready", func() (bool, string) {
		c, err := a.readyCondition(ctx, a.ks)
		if err != nil || c == nil {
			return false, fmt.Sprint(err)
		}
		// Ready=True can be read before the same reconcile's
		// lastAppliedRevision: wait for both.
		applied := a.ks.Status.LastAppliedRevision
		ok := c.Status == metav1.ConditionTrue && applied != "" && (revision == "" || applied == revision)
		return ok, fmt.Sprintf("%s: %s (applied %s)", c.Reason, c.Message, a.ks.Status.LastAppliedRevision)
	})
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt on both objects.
func (a *app) requestReconcile(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Format(time.RFC3339Nano)
	for _, obj := range []client.Object{&sourcev1.GitRepository{}, &kustomizev1.Kustomization{}} {
		name := a.repo.Name
		if _, ok := obj.(*kustomizev1.Kustomization); ok {
			name = a.ks.Name
		}
		obj.SetName(name)
		obj.SetNamespace(a.ns)
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, now))
		if err := a.c.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			t.Fatalf("request reconcile: %v", err)
		}
	}
}

// rolledOut reports whether the Deployment runs image on all its replicas
// with no old pods left.
func (a *app) rolledOut(ctx context.Context, image string) (bool, string) {
	d := &appsv1.Deployment{}
	if err := a.c.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: demo.DeploymentName}, d); err != nil {
		return false, err.Error()
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	img := d.Spec.Template.Spec.Containers[0].Image
	ok := img == image && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
		s.ReadyReplicas == want && s.AvailableReplicas == want && s.Replicas == want
	return ok, fmt.Sprintf("image %s, %d/%d updated, %d ready, %d total", img, s.UpdatedReplicas, want, s.ReadyReplicas, s.Replicas)
}

var imageLine = regexp.MustCompile(`(?m)^(\s+image: ).*$`)

// setImage rewrites the development overlay's image.
func setImage(image string) func(billy.Filesystem) error {
	return func(wt billy.Filesystem) error {
		return editFile(wt, demo.ManifestPath("development"), func(s string) string {
			return imageLine.ReplaceAllString(s, "${1}"+image)
		})
	}
}

func editFile(wt billy.Filesystem, name string, edit func(string) string) error {
	f, err := wt.Open(name)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	out, err := wt.Create(name)
	if err != nil {
		return err
	}
	if _, err := out.Write([]byte(edit(string(data)))); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s; last state: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDemoRepositoryBecomesReady(t *testing.T) {
	e := env.Require(t)
	t.Logf("local cluster ready in %s", e.StartTime.Round(time.Millisecond))
	start := time.Now()
	a := newApp(t, e, 2*time.Minute)
	a.waitReady(t, "", 2*time.Minute)
	poll(t, time.Minute, "Deployment rolled out", func() (bool, string) {
		return a.rolledOut(context.Background(), "nginx:1.27.0")
	})
	t.Logf("demo GitRepository + Kustomization Ready and Deployment rolled out %s after creation", time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(a.ks.Status.LastAppliedRevision, "main@sha1:") {
		t.Errorf("lastAppliedRevision = %q, want main@sha1:…", a.ks.Status.LastAppliedRevision)
	}
	svc := &corev1.Service{}
	if err := a.c.Get(context.Background(), client.ObjectKey{Namespace: a.ns, Name: demo.DeploymentName}, svc); err != nil {
		t.Errorf("service not applied: %v", err)
	}
	logRSS(t, e.Cluster.Status())
}

func TestPushedCommitIsAppliedAfterReconcileRequest(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	a := newApp(t, e, 2*time.Minute)
	a.waitReady(t, "", 2*time.Minute)

	const commits = 10
	var rollout, ready []time.Duration
	for i := 1; i <= commits; i++ {
		image := fmt.Sprintf("nginx:1.27.%d", i)
		sha, err := a.remote.Commit(ctx, "deploy "+image, setImage(image))
		if err != nil {
			t.Fatal(err)
		}
		pushed := time.Now()
		a.requestReconcile(t)
		poll(t, time.Minute, "Deployment rolled out with "+image, func() (bool, string) { return a.rolledOut(ctx, image) })
		rollout = append(rollout, time.Since(pushed))
		a.waitReady(t, "main@sha1:"+sha, time.Minute)
		ready = append(ready, time.Since(pushed))
		if got := a.repo.Status.Artifact; got == nil || got.Revision != "main@sha1:"+sha {
			t.Errorf("GitRepository artifact = %+v, want revision of %s", got, sha)
		}
	}
	t.Logf("commit → Deployment rolled out over %d commits: p50 %s, p95 %s (all %s)", commits, pct(rollout, 50), pct(rollout, 95), rollout)
	t.Logf("commit → Kustomization Ready over %d commits: p50 %s, p95 %s (all %s)", commits, pct(ready, 50), pct(ready, 95), ready)
}

func TestUnreadyPodsEndInHealthCheckFailed(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	a := newApp(t, e, 15*time.Second)
	a.waitReady(t, "", 2*time.Minute)

	sha, err := a.remote.Commit(ctx, "break: pods never ready", func(wt billy.Filesystem) error {
		return editFile(wt, demo.ManifestPath("development"), func(s string) string {
			s = imageLine.ReplaceAllString(s, "${1}nginx:broken")
			return strings.Replace(s, "  template:\n    spec:",
				"  template:\n    metadata:\n      annotations:\n        "+localcluster.UnreadyAnnotation+": \"true\"\n    spec:", 1)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	a.requestReconcile(t)
	start := time.Now()
	poll(t, 2*time.Minute, "Kustomization HealthCheckFailed", func() (bool, string) {
		c, err := a.readyCondition(ctx, a.ks)
		if err != nil || c == nil {
			return false, fmt.Sprint(err)
		}
		return c.Status == metav1.ConditionFalse && c.Reason == meta.HealthCheckFailedReason &&
			a.ks.Status.LastAttemptedRevision == "main@sha1:"+sha, c.Reason + ": " + c.Message
	})
	t.Logf("Kustomization HealthCheckFailed %s after the reconcile request", time.Since(start).Round(time.Millisecond))

	pods := &corev1.PodList{}
	if err := a.c.List(ctx, pods, client.InNamespace(a.ns)); err != nil {
		t.Fatal(err)
	}
	unready := 0
	for _, p := range pods.Items {
		if p.Annotations[localcluster.UnreadyAnnotation] != "true" {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && p.Status.Phase == corev1.PodRunning {
				unready++
			}
		}
	}
	if unready == 0 {
		t.Errorf("no Running pod with Ready=False among %d pods", len(pods.Items))
	}

	// A fix pushed after the failure is applied and becomes healthy.
	fix, err := a.remote.Commit(ctx, "fix: healthy pods again", func(wt billy.Filesystem) error {
		return editFile(wt, demo.ManifestPath("development"), func(s string) string {
			s = imageLine.ReplaceAllString(s, "${1}nginx:1.27.9")
			return strings.Replace(s, "    metadata:\n      annotations:\n        "+localcluster.UnreadyAnnotation+": \"true\"\n", "", 1)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	a.requestReconcile(t)
	poll(t, time.Minute, "Deployment rolled out after the fix", func() (bool, string) { return a.rolledOut(ctx, "nginx:1.27.9") })
	a.waitReady(t, "main@sha1:"+fix, time.Minute)
	t.Logf("fix pushed → Kustomization Ready again in %s", time.Since(pushed).Round(time.Millisecond))
}

// TestSupervision runs `cluster up` in a child process on a fresh data dir,
// kills one component (restarted), crashes the supervisor with SIGKILL (no
// child may survive), starts again on the same data dir (etcd state kept)
// and stops with `cluster down` (no child left).
func TestSupervision(t *testing.T) {
	e := env.Require(t)
	_ = e
	dir := t.TempDir()

	sup, supDone, warm := startHelper(t, dir)
	t.Logf("warm start to all ready (separate process): %s", warm.Round(time.Millisecond))
	st := readStatus(t, dir)
	pids := childPIDs(st)
	if len(pids) != len(localcluster.Binaries()) {
		t.Fatalf("want %d children, status has %v", len(localcluster.Binaries()), pids)
	}
	logRSS(t, st)

	// A component that dies is restarted.
	sched := component(st, "kube-scheduler")
	if err := syscall.Kill(sched.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "kube-scheduler restarted", func() (bool, string) {
		c := component(readStatus(t, dir), "kube-scheduler")
		return c.Restarts >= 1 && c.State == localcluster.StateReady && c.PID != 0 && c.PID != sched.PID,
			fmt.Sprintf("%s pid %d restarts %d", c.State, c.PID, c.Restarts)
	})

	// State survives a restart: leave a ConfigMap behind.
	kc := filepath.Join(dir, "kubeconfig")
	cl := clientFor(t, kc)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if err := cl.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}

	// The supervisor crashes: every child dies with it.
	pids = childPIDs(readStatus(t, dir))
	if err := sup.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-supDone
	waitGone(t, pids, "after SIGKILL of the supervisor")

	_, supDone, warm = startHelper(t, dir)
	t.Logf("warm restart on the same data dir to all ready: %s", warm.Round(time.Millisecond))
	got := &corev1.ConfigMap{}
	if err := clientFor(t, kc).Get(context.Background(), client.ObjectKeyFromObject(cm), got); err != nil || got.Data["k"] != "v" {
		t.Fatalf("state not kept across restart: %v %v", err, got.Data)
	}
	pids = childPIDs(readStatus(t, dir))
	var out bytes.Buffer
	if err := localcluster.RunCLI(context.Background(), []string{"down", "--data-dir", dir}, &out); err != nil {
		t.Fatalf("cluster down: %v\n%s", err, out.String())
	}
	<-supDone
	waitGone(t, pids, "after cluster down")
	out.Reset()
	if err := localcluster.RunCLI(context.Background(), []string{"status", "--data-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "phase: stopped") {
		t.Errorf("status after down:\n%s", out.String())
	}
}

// startHelper runs `cluster up` on dir in a child process; the channel is
// closed once that process has exited and been reaped.
func startHelper(t *testing.T, dir string) (*exec.Cmd, chan struct{}, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	logf, err := os.Create(filepath.Join(t.TempDir(), "helper.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
		}
	})
	poll(t, 3*time.Minute, "helper cluster ready", func() (bool, string) {
		var st localcluster.Status
		data, err := os.ReadFile(filepath.Join(dir, "status.json"))
		if err != nil || json.Unmarshal(data, &st) != nil {
			return false, "no status yet"
		}
		if st.Phase == localcluster.PhaseFailed {
			t.Fatalf("helper cluster failed: %s", st.Message)
		}
		return st.Phase == localcluster.PhaseReady && st.PID == cmd.Process.Pid, string(st.Phase)
	})
	return cmd, done, time.Since(start)
}

func readStatus(t *testing.T, dir string) localcluster.Status {
	t.Helper()
	var st localcluster.Status
	data, err := os.ReadFile(filepath.Join(dir, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func component(st localcluster.Status, name string) localcluster.ComponentStatus {
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
	}
	return localcluster.ComponentStatus{}
}

func childPIDs(st localcluster.Status) []int {
	var pids []int
	for _, c := range st.Components {
		if c.PID != 0 && c.PID != st.PID {
			pids = append(pids, c.PID)
		}
	}
	return pids
}

// waitGone fails unless every pid has exited (zombies count as gone).
func waitGone(t *testing.T, pids []int, when string) {
	t.Helper()
	poll(t, 30*time.Second, "children gone "+when, func() (bool, string) {
		var alive []int
		for _, pid := range pids {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// Field 3 is the state; Z is a zombie waiting to be reaped.
			fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
			if len(fields) > 0 && fields[0] == "Z" {
				continue
			}
			alive = append(alive, pid)
		}
		return len(alive) == 0, fmt.Sprintf("still alive: %v", alive)
	})
}

func clientFor(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmdConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	s, err := clustertest.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logRSS logs the resident memory of every child.
func logRSS(t *testing.T, st localcluster.Status) {
	t.Helper()
	var total int64
	var parts []string
	for _, c := range st.Components {
		if c.PID == 0 || c.PID == st.PID {
			continue
		}
		kb := rssKB(c.PID)
		total += kb
		parts = append(parts, fmt.Sprintf("%s %d MiB", c.Name, kb/1024))
	}
	t.Logf("RSS: %s; children total %d MiB", strings.Join(parts, ", "), total/1024)
}

func rssKB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (p*len(s)+99)/100 - 1
	if idx < 0 {
		idx = 0
	}
	return s[idx].Round(time.Millisecond)
}

func clientcmdConfig(kubeconfig string) (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

func TestCLIBuildAndKubeconfig(t *testing.T) {
	e := env.Require(t)
	var out bytes.Buffer
	// Every binary is cached by now: build only reports where they are.
	if err := localcluster.RunCLI(context.Background(), []string{"build"}, &out); err != nil {
		t.Fatalf("cluster build: %v\n%s", err, out.String())
	}
	for _, b := range localcluster.Binaries() {
		if !strings.Contains(out.String(), b.Name+"-"+b.Version+"-") {
			t.Errorf("build output lacks %s:\n%s", b.Name, out.String())
		}
	}
	out.Reset()
	if err := localcluster.RunCLI(context.Background(), []string{"kubeconfig", "--data-dir", e.Cluster.DataDir()}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != e.Kubeconfig {
		t.Errorf("kubeconfig = %q, want %q", out.String(), e.Kubeconfig)
	}
	out.Reset()
	if err := localcluster.RunCLI(context.Background(), []string{"status", "--data-dir", e.Cluster.DataDir()}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"phase: ready", "kube-apiserver", "kustomize-controller", "git-server"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
