package redis_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/bustest"
	"github.com/fluxgate/fluxgate/redis"
)

var clientSeq atomic.Int64

// openClient returns a client whose connections carry a unique name, so
// that a test can find and kill them.
func openClient(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	name := fmt.Sprintf("fluxgate-test-%d-%d", os.Getpid(), clientSeq.Add(1))
	client, err := redis.Open(context.Background(), bustest.RedisURL(t), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, name
}

// testPrefix isolates a test's channels and keys from any other run.
func testPrefix(t testing.TB) string {
	return fmt.Sprintf("fluxgate-test:%d:%s:", time.Now().UnixNano(), t.Name())
}

type harness struct {
	admin   *goredis.Client
	prefix  map[testing.TB]string
	clients map[fluxgate.EventBus]string
}

func newHarness(t *testing.T) *harness {
	admin, _ := openClient(t)
	return &harness{admin: admin, prefix: map[testing.TB]string{}, clients: map[fluxgate.EventBus]string{}}
}

func (h *harness) prefixFor(t testing.TB) string {
	if p, ok := h.prefix[t]; ok {
		return p
	}
	p := testPrefix(t)
	h.prefix[t] = p
	return p
}

func (h *harness) busHarness() bustest.BusHarness {
	return bustest.BusHarness{
		New: func(t testing.TB, bufferSize int) fluxgate.EventBus {
			client, name := openClient(t)
			bus := redis.NewBus(client, redis.BusOptions{Prefix: h.prefixFor(t), BufferSize: bufferSize, HealthCheck: time.Second})
			t.Cleanup(func() { bus.Close() })
			h.clients[bus] = name
			return bus
		},
		BackendSubscriptions: func(t testing.TB, topic string) int {
			channel := h.prefixFor(t) + topic
			n, err := h.admin.PubSubNumSub(context.Background(), channel).Result()
			if err != nil {
				t.Fatalf("pubsub numsub: %v", err)
			}
			return int(n[channel])
		},
		Disconnect: func(t testing.TB, bus fluxgate.EventBus) {
			killClients(t, h.admin, h.clients[bus])
		},
	}
}

// killClients kills every connection named name, as a network cut would.
func killClients(t testing.TB, admin *goredis.Client, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("client list: %v", err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		var id, cname string
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "id="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(field, "name="); ok {
				cname = v
			}
		}
		if cname == name && id != "" {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatalf("client kill id %s: %v", id, err)
			}
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no redis connection named %s to kill", name)
	}
}

func TestBus(t *testing.T) {
	h := newHarness(t)
	bustest.RunBus(t, h.busHarness())
}

func TestPresence(t *testing.T) {
	h := newHarness(t)
	bustest.RunPresence(t, bustest.PresenceHarness{
		New: func(t testing.TB, ttl time.Duration, now func() time.Time) (a, b fluxgate.PresenceStore, bus fluxgate.EventBus) {
			prefix := h.prefixFor(t)
			clientA, _ := openClient(t)
			clientB, _ := openClient(t)
			busA := redis.NewBus(clientA, redis.BusOptions{Prefix: prefix})
			busB := redis.NewBus(clientB, redis.BusOptions{Prefix: prefix})
			t.Cleanup(func() { busA.Close(); busB.Close() })
			opts := redis.PresenceOptions{Prefix: prefix, TTL: ttl, Now: now}
			return redis.NewPresence(clientA, busA, opts), redis.NewPresence(clientB, busB, opts), busA
		},
	})
}

// TestRedisUnreachable: with Redis down, subscribing still works (live
// updates pause), publishing fails and closing does not hang.
func TestRedisUnreachable(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	bus := redis.NewBus(client, redis.BusOptions{SubscribeTimeout: 3 * time.Second})
	start := time.Now()
	sub, err := bus.Subscribe(context.Background(), "project:p1")
	if err != nil {
		t.Fatalf("subscribe with Redis down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("subscribe with Redis down took %v", d)
	}
	if err := bus.Publish(context.Background(), "project:p1", fluxgate.Event{Type: fluxgate.EventFluxEvent}); err == nil {
		t.Fatal("publish with Redis down succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- bus.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close hung")
	}
	if _, ok := <-sub.C(); ok || sub.Err() != fluxgate.ErrBusClosed {
		t.Fatalf("after close: Err %v", sub.Err())
	}
}
