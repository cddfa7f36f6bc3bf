package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate/localcluster"
)

// syncBuffer is a concurrency-safe writer for the server's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireClusterBinaries skips without the local cluster's binaries, unless
// FLUXGATE_REQUIRE_CLUSTER=1 (CI), which builds them.
func requireClusterBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the local cluster takes a while")
	}
	dir, err := localcluster.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	b := &localcluster.Builder{CacheDir: dir, Progress: io.Discard}
	for _, bin := range localcluster.Binaries() {
		if !b.Cached(bin) && os.Getenv("FLUXGATE_REQUIRE_CLUSTER") != "1" {
			t.Skipf("local cluster binaries not built (%s %s): run `fluxgate cluster build` or set FLUXGATE_REQUIRE_CLUSTER=1", bin.Name, bin.Version)
		}
	}
}

// TestServeOnEmbeddedDefaults runs `fluxgate serve` as a newcomer would
// (no configuration but a data dir): SQLite, in-memory bus, development
// auth and the local cluster. The seeded demo project's GitOps resources
// must become READY through the real Flux controllers, and stopping
// fluxgate must leave no child process behind.
func TestServeOnEmbeddedDefaults(t *testing.T) {
	requireClusterBinaries(t)
	dataDir := t.TempDir()
	t.Setenv("FLUXGATE_DATA_DIR", dataDir)
	t.Setenv("FLUXGATE_ADDR", "127.0.0.1:0")
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "FLUXGATE_JWT_SECRET", "KUBECONFIG", "KUBERNETES_SERVICE_HOST"} {
		t.Setenv(k, "")
	}
	out := &syncBuffer{}
	m := NewMain(out, out)
	if err := m.ParseFlags([]string{"--dev-token", "test-dev-token", "--log-format", "text"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	if err := m.Open(ctx); err != nil {
		t.Fatalf("open: %v\n%s", err, out.String())
	}
	served := make(chan error, 1)
	go func() { served <- m.server.Serve() }()
	url := "http://" + m.server.Addr() + "/graphql"

	query := func(q string, v any) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": q})
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer test-dev-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r struct {
			Data   json.RawMessage
			Errors []struct{ Message string }
		}
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %v", q, r.Errors)
		}
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatal(err)
		}
	}

	// The API answers at once, before the cluster is up.
	var p struct{ Project struct{ ID string } }
	query(`{ project(slug: "demo") { id } }`, &p)

	deadline := time.Now().Add(5 * time.Minute)
	var ready []string
	for time.Now().Before(deadline) {
		var res struct {
			GitopsResources struct {
				Edges []struct {
					Node struct{ Kind, Name, Status, ErrorMessage string }
				}
			}
		}
		query(`{ gitopsResources(projectId: "`+p.Project.ID+`") { edges { node { kind name status errorMessage } } } }`, &res)
		ready = ready[:0]
		for _, e := range res.GitopsResources.Edges {
			if e.Node.Status == "READY" {
				ready = append(ready, e.Node.Kind+"/"+e.Node.Name)
			}
		}
		if len(res.GitopsResources.Edges) == 4 && len(ready) == 4 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(ready) != 4 {
		t.Fatalf("demo resources READY: %v, want 2 GitRepositories and 2 Kustomizations\n%s", ready, out.String())
	}
	t.Logf("demo READY %s after start (binaries cached)", time.Since(start).Round(100*time.Millisecond))

	var h struct {
		FluxHealth struct {
			Installed, Ready bool
		}
	}
	query(`{ fluxHealth { installed ready } }`, &h)
	if !h.FluxHealth.Installed || !h.FluxHealth.Ready {
		t.Fatalf("fluxHealth = %+v", h.FluxHealth)
	}

	pids := childPIDs(t, dataDir)
	if len(pids) < 5 {
		t.Fatalf("expected the cluster's processes, found pids %v", pids)
	}
	cancel()
	stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := m.Close(stopCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	<-served
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child process %d still running after fluxgate stopped", pid)
		}
	}
}

// childPIDs returns the local cluster's component processes.
func childPIDs(t *testing.T, dataDir string) []int {
	t.Helper()
	b, err := os.ReadFile(dataDir + "/cluster/status.json")
	if err != nil {
		t.Fatalf("cluster status: %v", err)
	}
	var st localcluster.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, c := range st.Components {
		if c.PID > 0 && !strings.Contains(c.Name, "git") {
			pids = append(pids, c.PID)
		}
	}
	return pids
}
