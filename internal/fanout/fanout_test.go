package fanout_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/internal/fanout"
)

func TestDoneContextIsRefused(t *testing.T) {
	r := fanout.New(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := r.Add(ctx, "t"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with a done context: %v", err)
	}
	if r.Has("t") {
		t.Fatal("topic registered by a refused subscriber")
	}
}

func TestFirstAndEmpty(t *testing.T) {
	var emptied []string
	r := fanout.New(0, func(topic string) { emptied = append(emptied, topic) })
	a, first, _ := r.Add(context.Background(), "t")
	b, again, _ := r.Add(context.Background(), "t")
	if !first || again {
		t.Fatalf("first = %v, %v", first, again)
	}
	a.Close()
	a.Close() // twice is fine
	if len(emptied) != 0 {
		t.Fatal("onEmpty called with a subscriber left")
	}
	b.Close()
	if len(emptied) != 1 || emptied[0] != "t" || r.Has("t") {
		t.Fatalf("after the last left: emptied %v, has %v", emptied, r.Has("t"))
	}
}

// TestConcurrentChurn delivers while subscribers come, go, get cut off
// and the registry closes: no send on a closed channel, every subscription
// ends exactly once with a known reason.
func TestConcurrentChurn(t *testing.T) {
	r := fanout.New(2, nil)
	var wg sync.WaitGroup
	var subscribed atomic.Int64
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Deliver("t", fluxgate.Event{Type: "x"})
			}
		}()
	}
	subs := make(chan *fanout.Sub, 10000)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cancels []context.CancelFunc
			defer func() {
				for _, cancel := range cancels {
					cancel()
				}
			}()
			for i := range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				sub, _, err := r.Add(ctx, "t")
				if err != nil {
					cancel()
					if !errors.Is(err, fluxgate.ErrBusClosed) {
						t.Errorf("add: %v", err)
					}
					return
				}
				subscribed.Add(1)
				subs <- sub
				switch i % 3 {
				case 0:
					sub.Close()
				case 1:
					cancel()
				}
				// case 2: left to be cut off or closed with the registry
				cancels = append(cancels, cancel)
			}
		}()
	}
	for subscribed.Load() < 400 {
		runtime.Gosched()
	}
	r.Close()
	close(stop)
	wg.Wait()
	close(subs)
	for sub := range subs {
		for range sub.C() {
		}
		if err := sub.Err(); err != nil && !errors.Is(err, fluxgate.ErrSubscriberTooSlow) && !errors.Is(err, fluxgate.ErrBusClosed) {
			t.Fatalf("unexpected Err %v", err)
		}
	}
}
