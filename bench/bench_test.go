package bench_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
	"github.com/fluxgate/fluxgate/redis"
)

const topic = "project:bench"

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func reportLatency(b *testing.B, samples []time.Duration, prefix string) {
	slices.Sort(samples)
	b.ReportMetric(float64(percentile(samples, 50).Microseconds()), prefix+"p50-µs")
	b.ReportMetric(float64(percentile(samples, 99).Microseconds()), prefix+"p99-µs")
}

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openRedisBus(b *testing.B, prefix string, bufferSize int) *redis.Bus {
	b.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		b.Skip("REDIS_URL not set")
	}
	client, err := redis.Open(context.Background(), url, "")
	if err != nil {
		b.Fatal(err)
	}
	bus := redis.NewBus(client, redis.BusOptions{Prefix: prefix, BufferSize: bufferSize})
	b.Cleanup(func() {
		bus.Close()
		client.Close()
	})
	return bus
}

// fanOut measures one event reaching n hub streams fed by sub, published
// on pub: per event, the time from Publish to the last stream's receipt.
func fanOut(b *testing.B, pub fluxgate.Publisher, sub fluxgate.EventBus, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := hub.New(sub, hub.Options{})
	var received atomic.Int64
	var target atomic.Int64
	last := make(chan time.Time, 1)
	for range n {
		s, err := h.Subscribe(ctx, hub.Request{Topic: topic})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for range s.C() {
				if received.Add(1) == target.Load() {
					last <- time.Now()
				}
			}
		}()
	}

	samples := make([]time.Duration, 0, b.N)
	ev := fluxgate.Event{Type: fluxgate.EventResourceStatus, ProjectID: "bench", Payload: []byte(`{"status":"ready"}`)}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		target.Store(int64(i+1) * int64(n))
		start := time.Now()
		ev.At = start
		if err := pub.Publish(ctx, topic, ev); err != nil {
			b.Fatal(err)
		}
		select {
		case end := <-last:
			samples = append(samples, end.Sub(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("event %d reached %d of %d streams", i, received.Load()-int64(i)*int64(n), n)
		}
	}
	b.StopTimer()
	reportLatency(b, samples, "last-delivery-")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/delivery")
}

// BenchmarkFanOut: one event to 1,000 and 10,000 subscribers of one
// process (in-memory bus + hub), and through Redis from another replica.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("inmem/subscribers=%d", n), func(b *testing.B) {
			bus := inmem.NewBus(0)
			defer bus.Close()
			fanOut(b, bus, bus, n)
		})
		b.Run(fmt.Sprintf("redis/subscribers=%d", n), func(b *testing.B) {
			prefix := fmt.Sprintf("fluxgate-bench:%d:", time.Now().UnixNano())
			pub, sub := openRedisBus(b, prefix, 0), openRedisBus(b, prefix, 0)
			fanOut(b, pub, sub, n)
		})
	}
}

// BenchmarkIdleSubscriptions holds 10,000 resumable streams through the
// hub, spread over 100 topics, and reports what each one costs.
func BenchmarkIdleSubscriptions(b *testing.B) {
	const n = 10000
	for range b.N {
		bus := inmem.NewBus(0)
		h := hub.New(bus, hub.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		replay := func(context.Context, int64) ([]fluxgate.Event, error) { return nil, nil }

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()

		streams := make([]*hub.Stream[fluxgate.Event], n)
		for i := range streams {
			s, err := h.Subscribe(ctx, hub.Request{Topic: fmt.Sprintf("project:%d", i%100), After: 42, Replay: replay})
			if err != nil {
				b.Fatal(err)
			}
			streams[i] = s
		}
		for h.Active() != n {
			runtime.Gosched()
		}
		time.Sleep(100 * time.Millisecond) // let every stream park
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()

		mem := float64(after.HeapAlloc+after.StackInuse) - float64(before.HeapAlloc+before.StackInuse)
		b.ReportMetric(mem/n/1024, "KB/subscription")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/subscription")
		b.ReportMetric(float64(h.Active()), "subscriptions")

		cancel()
		for _, s := range streams {
			for range s.C() {
			}
		}
		bus.Close()
	}
}

// BenchmarkCrossReplica publishes 1,000 events/s on one replica and
// reports the latency until a subscriber on another replica has each.
func BenchmarkCrossReplica(b *testing.B) {
	prefix := fmt.Sprintf("fluxgate-bench:%d:", time.Now().UnixNano())
	pub, sub := openRedisBus(b, prefix, 1024), openRedisBus(b, prefix, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}

	samples := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range s.C() {
			if ev.Type == fluxgate.EventResync {
				continue
			}
			samples = append(samples, time.Since(ev.At))
			if len(samples) == b.N {
				return
			}
		}
	}()

	tick := time.NewTicker(time.Millisecond) // 1,000 events/s
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		ev := fluxgate.Event{Type: fluxgate.EventFluxEvent, ProjectID: "bench", Seq: int64(i + 1), Payload: []byte(`{"reason":"Progressing"}`), At: time.Now()}
		if err := pub.Publish(ctx, topic, ev); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("received %d of %d events", len(samples), b.N)
	}
	b.StopTimer()
	if s.Err() != nil {
		b.Fatalf("subscription ended: %v", s.Err())
	}
	reportLatency(b, samples, "")
}
