package redis_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/redis"
)

// redisServer runs a private redis-server that a test can stop and start.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T, port int) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	s := &redisServer{t: t, port: port}
	s.cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", s.addr())
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d did not start", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *redisServer) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRedisRestart stops Redis while events are stored, subscribes while
// it is down, then starts it again: every stream gets everything.
func TestRedisRestart(t *testing.T) {
	port := freePort(t)
	server := startRedisServer(t, port)
	client := goredis.NewClient(&goredis.Options{Addr: server.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	defer client.Close()
	bus := redis.NewBus(client, redis.BusOptions{HealthCheck: 200 * time.Millisecond, SubscribeTimeout: time.Second})
	defer bus.Close()
	h := hub.New(bus, hub.Options{})

	// The database: a log per topic.
	var mu sync.Mutex
	logs := map[string][]fluxgate.Event{}
	store := func(topic string) fluxgate.Event {
		mu.Lock()
		defer mu.Unlock()
		ev := fluxgate.Event{Type: fluxgate.EventFluxEvent, Seq: int64(len(logs[topic]) + 1), Payload: []byte(`{}`)}
		logs[topic] = append(logs[topic], ev)
		return ev
	}
	replay := func(topic string) hub.ReplayFunc {
		return func(_ context.Context, after int64) ([]fluxgate.Event, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]fluxgate.Event(nil), logs[topic][min(after, int64(len(logs[topic]))):]...), nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	expect := func(s *hub.Stream[fluxgate.Event], from, to int64) {
		t.Helper()
		for want := from; want <= to; want++ {
			select {
			case ev, ok := <-s.C():
				if !ok {
					t.Fatalf("stream ended: %v", s.Err())
				}
				if ev.Seq != want {
					t.Fatalf("got seq %d, want %d", ev.Seq, want)
				}
			case <-ctx.Done():
				t.Fatalf("seq %d not received", want)
			}
		}
	}

	store("a")
	a, err := h.Subscribe(ctx, hub.Request{Topic: "a", After: 1, Replay: replay("a")})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := bus.Publish(ctx, "a", store("a")); err != nil {
			t.Fatal(err)
		}
	}
	expect(a, 2, 4)

	server.stop()
	for range 5 {
		ev := store("a") // stored; publishing fails
		if err := bus.Publish(ctx, "a", ev); err == nil {
			t.Fatal("publish succeeded with Redis stopped")
		}
	}
	store("b")
	b, err := h.Subscribe(ctx, hub.Request{Topic: "b", After: 1, Replay: replay("b")})
	if err != nil {
		t.Fatalf("subscribe with Redis stopped: %v", err)
	}
	store("b") // missed by b's live subscription

	startRedisServer(t, port)
	expect(a, 5, 9) // backfilled after the resync
	expect(b, 2, 2)
	// Live again on both topics, through the same connection.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := bus.Publish(ctx, "b", store("b")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("publish after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := bus.Publish(ctx, "a", store("a")); err != nil {
		t.Fatal(err)
	}
	expect(a, 10, 10)
	mu.Lock()
	last := int64(len(logs["b"]))
	mu.Unlock()
	expect(b, 3, last)
}
