package main

import (
	"bytes"
	"io"
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
func requireClusterBinaries(t testing.TB) {
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
	start := time.Now()
	s := startStack(t)

	// The API answers at once, before the cluster is up.
	var p struct{ Project struct{ ID string } }
	s.must(s.devToken, `{ project(slug: "demo") { id } }`, nil, &p)

	s.waitDemoReady()
	t.Logf("demo READY %s after start (binaries cached)", time.Since(start).Round(100*time.Millisecond))

	var h struct {
		FluxHealth struct {
			Installed, Ready bool
		}
	}
	s.must(s.devToken, `{ fluxHealth { installed ready } }`, nil, &h)
	if !h.FluxHealth.Installed || !h.FluxHealth.Ready {
		t.Fatalf("fluxHealth = %+v", h.FluxHealth)
	}

	pids := childPIDs(s.clusterStatus())
	if len(pids) < 5 {
		t.Fatalf("expected the cluster's processes, found pids %v", pids)
	}
	s.close()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child process %d still running after fluxgate stopped", pid)
		}
	}
}

// childPIDs returns the local cluster's component processes.
func childPIDs(st localcluster.Status) []int {
	var pids []int
	for _, c := range st.Components {
		if c.PID > 0 && !strings.Contains(c.Name, "git") {
			pids = append(pids, c.PID)
		}
	}
	return pids
}
