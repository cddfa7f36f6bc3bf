package inmem_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/bustest"
	"github.com/fluxgate/fluxgate/inmem"
)

func TestBus(t *testing.T) {
	// One process has one bus: "replicas" of a test share it.
	var mu sync.Mutex
	buses := map[testing.TB]*inmem.Bus{}
	bustest.RunBus(t, bustest.BusHarness{
		New: func(t testing.TB, bufferSize int) fluxgate.EventBus {
			mu.Lock()
			defer mu.Unlock()
			if b := buses[t]; b != nil {
				return b
			}
			b := inmem.NewBus(bufferSize)
			buses[t] = b
			t.Cleanup(func() { b.Close() })
			return b
		},
	})
}

func TestPresence(t *testing.T) {
	bustest.RunPresence(t, bustest.PresenceHarness{
		New: func(t testing.TB, ttl time.Duration, now func() time.Time) (a, b fluxgate.PresenceStore, bus fluxgate.EventBus) {
			eb := inmem.NewBus(0)
			t.Cleanup(func() { eb.Close() })
			p := inmem.NewPresence(eb, inmem.PresenceOptions{TTL: ttl, Now: now})
			return p, p, eb
		},
	})
}
