package k8s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
)

// countingSink counts ResourceChanged calls and does nothing else.
type countingSink struct{ changes atomic.Int64 }

func (s *countingSink) ResourceChanged(context.Context, k8s.ResourceChange) error {
	s.changes.Add(1)
	return nil
}
func (s *countingSink) ResourceDeleted(context.Context, k8s.ResourceRef) error { return nil }
func (s *countingSink) FluxEvent(context.Context, *fluxgate.FluxEvent) error   { return nil }
func (s *countingSink) Resync(context.Context, []k8s.ResourceRef) error        { return nil }

// createKustomizations creates n managed Kustomizations in ns with the status
// of the captured ready fixture (conditions, inventory, history), as Flux
// would leave them.
func createKustomizations(tb testing.TB, e *k8stest.Env, ns string, n int) {
	tb.Helper()
	var fixture kustomizev1.Kustomization
	b, err := os.ReadFile("testdata/objects/kustomization-ready.json")
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, &fixture); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := kustomization(tb, ns, fmt.Sprintf("app-%05d", i))
				obj, err := k8s.BuildObject(r)
				if err != nil {
					failed.Store(err)
					continue
				}
				ks := obj.(*kustomizev1.Kustomization)
				if err := e.Client.Create(ctx, ks); err != nil {
					failed.Store(err)
					continue
				}
				ks.Status = fixture.Status
				ks.Status.History[0].LastReconciled = metav1.Now()
				if err := e.Client.Status().Update(ctx, ks); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		tb.Fatalf("create kustomizations: %v", err)
	}
}

// BenchmarkWatcherColdSync measures a watcher starting cold on n
// Kustomizations on the real API server: time to the informer's initial
// sync, time until the sink has every object, and the heap the cache and the
// watcher's state take. 1,000 objects by default; set FLUXGATE_BENCH_10K=1
// for 10,000 as well (about a minute to create them).
//
//	go test ./k8s -run '^$' -bench WatcherColdSync -benchtime 3x
func BenchmarkWatcherColdSync(b *testing.B) {
	e := env.Require(b)
	sizes := []int{1000}
	if os.Getenv("FLUXGATE_BENCH_10K") == "1" {
		sizes = append(sizes, 10000)
	}
	for _, n := range sizes {
		// Created once per size: b.Run calls its function again as b.N grows.
		ns := e.Namespace(b, "bench")
		begin := time.Now()
		createKustomizations(b, e, ns, n)
		b.Logf("created %d Kustomizations (with status) in %v", n, time.Since(begin).Round(time.Millisecond))
		b.Run(fmt.Sprintf("kustomizations=%d", n), func(b *testing.B) {
			var syncMS, allMS, heapMB float64
			b.ResetTimer()
			for range b.N {
				sink := &countingSink{}
				w, err := k8s.NewWatcher(e.Config, sink, k8s.WatcherOptions{Namespaces: []string{ns}, NoEvents: true})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- w.Run(ctx) }()
				for !w.Synced() {
					time.Sleep(2 * time.Millisecond)
				}
				synced := time.Since(start)
				for sink.changes.Load() < int64(n) {
					time.Sleep(2 * time.Millisecond)
				}
				all := time.Since(start)
				runtime.GC()
				runtime.ReadMemStats(&after)
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				syncMS += float64(synced.Microseconds()) / 1000
				allMS += float64(all.Microseconds()) / 1000
				heapMB += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
			}
			nf := float64(b.N)
			b.ReportMetric(syncMS/nf, "sync-ms")
			b.ReportMetric(allMS/nf, "delivered-ms")
			b.ReportMetric(heapMB/nf, "heap-MB")
			b.ReportMetric(heapMB/nf*(1<<20)/float64(n), "heap-B/object")
		})
	}
}
