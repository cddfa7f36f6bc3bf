package hub_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
)

func presenceFixture(t *testing.T, ttl time.Duration) (*hub.Hub, *inmem.Presence, *inmem.Bus) {
	t.Helper()
	bus := inmem.NewBus(0)
	t.Cleanup(func() { bus.Close() })
	return hub.New(bus, hub.Options{}), inmem.NewPresence(bus, inmem.PresenceOptions{TTL: ttl}), bus
}

type present struct {
	user, field string
}

func summary(list []fluxgate.PresenceEntry) []present {
	out := make([]present, len(list))
	for i, e := range list {
		out[i] = present{e.UserID, e.Field}
	}
	return out
}

// waitFor reads lists until one matches want.
func waitFor(t *testing.T, s *hub.Stream[[]fluxgate.PresenceEntry], want ...present) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var last []present
	for {
		select {
		case list, ok := <-s.C():
			if !ok {
				t.Fatalf("presence stream ended: %v (last list %v)", s.Err(), last)
			}
			last = summary(list)
			if slices.Equal(last, want) {
				return
			}
		case <-timeout:
			t.Fatalf("last list %v, want %v", last, want)
		}
	}
}

func TestPresenceStream(t *testing.T) {
	h, store, bus := presenceFixture(t, time.Minute)
	ctx := context.Background()
	const env = "env-1"

	ctxA, cancelA := context.WithCancel(ctx)
	defer cancelA()
	a, err := h.Presence(ctxA, store, hub.PresenceRequest{EnvironmentID: env,
		Entry: fluxgate.PresenceEntry{UserID: "ada", Name: "Ada", Mode: fluxgate.PresenceViewing, Since: time.Unix(1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, present{"ada", ""})

	ctxB, cancelB := context.WithCancel(ctx)
	b, err := h.Presence(ctxB, store, hub.PresenceRequest{EnvironmentID: env,
		Entry: fluxgate.PresenceEntry{UserID: "bob", Name: "Bob", Mode: fluxgate.PresenceEditing, Since: time.Unix(2, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, present{"ada", ""}, present{"bob", ""})
	waitFor(t, a, present{"ada", ""}, present{"bob", ""})

	if err := store.UpdateField(ctx, env, "bob", "spec.replicas"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, present{"ada", ""}, present{"bob", "spec.replicas"})

	// Closing B's subscription (tab closed) removes Bob at once.
	cancelB()
	for range b.C() {
	}
	waitFor(t, a, present{"ada", ""})

	cancelA()
	for range a.C() {
	}
	if list, _ := store.List(ctx, env); len(list) != 0 {
		t.Fatalf("still present after every stream ended: %v", summary(list))
	}
	if h.Active() != 0 || bus.Subscribers(fluxgate.EnvironmentTopic(env)) != 0 {
		t.Fatalf("active %d, subscribers %d", h.Active(), bus.Subscribers(fluxgate.EnvironmentTopic(env)))
	}
}

func TestPresenceHeartbeatAndDeadReplica(t *testing.T) {
	const ttl = 300 * time.Millisecond
	h, store, _ := presenceFixture(t, ttl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const env = "env-2"

	// A user whose replica died: joined, never heartbeated.
	if err := store.Join(ctx, env, fluxgate.PresenceEntry{UserID: "ghost", Since: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	s, err := h.Presence(ctx, store, hub.PresenceRequest{EnvironmentID: env, Heartbeat: 50 * time.Millisecond,
		Entry: fluxgate.PresenceEntry{UserID: "ada", Since: time.Unix(1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, present{"ghost", ""}, present{"ada", ""})
	// The heartbeats keep Ada and expire the ghost, whose leave is sent.
	waitFor(t, s, present{"ada", ""})
	time.Sleep(3 * ttl)
	if list, _ := store.List(ctx, env); !slices.Equal(summary(list), []present{{"ada", ""}}) {
		t.Fatalf("after %v: %v", 3*ttl, summary(list))
	}

	// An entry lost meanwhile (say, the store was flushed) is joined again.
	if err := store.Leave(ctx, env, "ada"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := store.List(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(summary(list), []present{{"ada", ""}}) && list[0].Since.Equal(time.Unix(1, 0)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not joined again: %v", summary(list))
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, s, present{"ada", ""})
}
