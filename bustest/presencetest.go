package bustest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
)

// PresenceHarness opens presence stores on one backend.
type PresenceHarness struct {
	// New returns two stores sharing a backend, like two replicas, that
	// read the time from now and expire entries after ttl, and the bus
	// they publish changes on.
	New func(t testing.TB, ttl time.Duration, now func() time.Time) (a, b fluxgate.PresenceStore, bus fluxgate.EventBus)
}

// Clock is a settable clock for expiry tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// RunPresence runs the presence conformance suite.
func RunPresence(t *testing.T, h PresenceHarness) {
	t.Run("JoinUpdateLeave", func(t *testing.T) { testPresenceLifecycle(t, h) })
	t.Run("TTLExpiry", func(t *testing.T) { testPresenceExpiry(t, h) })
	t.Run("TwoReplicas", func(t *testing.T) { testPresenceReplicas(t, h) })
}

const ttl = 30 * time.Second

func envID(t testing.TB) string {
	return t.Name() + "/" + time.Now().Format(time.RFC3339Nano)
}

// nextChange returns the next presence change published on env's topic.
func nextChange(t testing.TB, sub fluxgate.Subscription) fluxgate.PresenceChange {
	t.Helper()
	ev := recv(t, sub)
	if ev.Type != fluxgate.EventPresence {
		t.Fatalf("got event type %q, want %q", ev.Type, fluxgate.EventPresence)
	}
	var c fluxgate.PresenceChange
	if err := json.Unmarshal(ev.Payload, &c); err != nil {
		t.Fatalf("decode presence change: %v", err)
	}
	return c
}

func expectChange(t testing.TB, sub fluxgate.Subscription, env, kind, userID string) fluxgate.PresenceChange {
	t.Helper()
	c := nextChange(t, sub)
	if c.EnvironmentID != env || c.Kind != kind || c.Entry.UserID != userID {
		t.Fatalf("got change %s of %q on %q, want %s of %q on %q", c.Kind, c.Entry.UserID, c.EnvironmentID, kind, userID, env)
	}
	return c
}

func list(t testing.TB, s fluxgate.PresenceStore, env string) []fluxgate.PresenceEntry {
	t.Helper()
	entries, err := s.List(context.Background(), env)
	if err != nil {
		t.Fatalf("list %s: %v", env, err)
	}
	return entries
}

func userIDs(entries []fluxgate.PresenceEntry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.UserID
	}
	return ids
}

func expectUsers(t testing.TB, s fluxgate.PresenceStore, env string, want ...string) []fluxgate.PresenceEntry {
	t.Helper()
	entries := list(t, s, env)
	got := userIDs(entries)
	if len(got) != len(want) {
		t.Fatalf("present on %s: %v, want %v", env, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("present on %s: %v, want %v", env, got, want)
		}
	}
	return entries
}

func testPresenceLifecycle(t *testing.T, h PresenceHarness) {
	clock := NewClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	a, _, bus := h.New(t, ttl, clock.Now)
	ctx := context.Background()
	env, other := envID(t), envID(t)+"-other"
	sub := subscribe(t, bus, fluxgate.EnvironmentTopic(env))

	ada := fluxgate.PresenceEntry{UserID: "u-ada", Name: "Ada", AvatarURL: "https://example.test/ada.png", Mode: fluxgate.PresenceEditing}
	if err := a.Join(ctx, env, ada); err != nil {
		t.Fatalf("join: %v", err)
	}
	c := expectChange(t, sub, env, fluxgate.PresenceJoin, "u-ada")
	if c.Entry.Name != "Ada" || c.Entry.Mode != fluxgate.PresenceEditing || !c.Entry.Since.Equal(clock.Now()) {
		t.Fatalf("join announced %+v", c.Entry)
	}

	clock.Add(time.Second)
	bob := fluxgate.PresenceEntry{UserID: "u-bob", Name: "Bob", Mode: fluxgate.PresenceViewing}
	if err := a.Join(ctx, env, bob); err != nil {
		t.Fatalf("join: %v", err)
	}
	expectChange(t, sub, env, fluxgate.PresenceJoin, "u-bob")
	entries := expectUsers(t, a, env, "u-ada", "u-bob")
	if e := entries[0]; e.Name != "Ada" || e.AvatarURL != ada.AvatarURL || e.Mode != fluxgate.PresenceEditing || e.Field != "" {
		t.Fatalf("listed %+v", e)
	}
	expectUsers(t, a, other)

	if err := a.UpdateField(ctx, env, "u-ada", "spec.replicas"); err != nil {
		t.Fatalf("update field: %v", err)
	}
	if c := expectChange(t, sub, env, fluxgate.PresenceUpdate, "u-ada"); c.Entry.Field != "spec.replicas" {
		t.Fatalf("update announced field %q", c.Entry.Field)
	}
	if e := expectUsers(t, a, env, "u-ada", "u-bob")[0]; e.Field != "spec.replicas" || e.Name != "Ada" {
		t.Fatalf("after update: %+v", e)
	}
	if err := a.UpdateField(ctx, env, "u-nobody", "x"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("update of an absent user: %v, want ENOTFOUND", err)
	}
	if err := a.Heartbeat(ctx, env, "u-nobody"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("heartbeat of an absent user: %v, want ENOTFOUND", err)
	}

	if err := a.Leave(ctx, env, "u-ada"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	expectChange(t, sub, env, fluxgate.PresenceLeave, "u-ada")
	expectUsers(t, a, env, "u-bob")
	if err := a.Leave(ctx, env, "u-ada"); err != nil {
		t.Fatalf("second leave: %v", err)
	}
	expectNone(t, sub, 100*time.Millisecond)
}

func testPresenceExpiry(t *testing.T, h PresenceHarness) {
	clock := NewClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	a, b, bus := h.New(t, ttl, clock.Now)
	ctx := context.Background()
	env := envID(t)
	sub := subscribe(t, bus, fluxgate.EnvironmentTopic(env))

	for _, id := range []string{"u-live", "u-dead"} {
		if err := a.Join(ctx, env, fluxgate.PresenceEntry{UserID: id, Name: id, Mode: fluxgate.PresenceViewing}); err != nil {
			t.Fatal(err)
		}
		expectChange(t, sub, env, fluxgate.PresenceJoin, id)
	}

	// Only u-live heartbeats; u-dead's replica died.
	clock.Add(ttl / 2)
	if err := a.Heartbeat(ctx, env, "u-live"); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	clock.Add(ttl/2 + time.Second)
	expectNone(t, sub, 50*time.Millisecond)

	// Another replica notices the expiry, removes it and announces it.
	expectUsers(t, b, env, "u-live")
	expectChange(t, sub, env, fluxgate.PresenceLeave, "u-dead")
	expectUsers(t, a, env, "u-live")
	expectNone(t, sub, 100*time.Millisecond) // announced once

	if err := b.Heartbeat(ctx, env, "u-dead"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("heartbeat of an expired entry: %v, want ENOTFOUND", err)
	}
	clock.Add(ttl)
	if err := a.Heartbeat(ctx, env, "u-live"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("heartbeat after the TTL: %v, want ENOTFOUND", err)
	}
	expectChange(t, sub, env, fluxgate.PresenceLeave, "u-live")
	expectUsers(t, b, env)
}

func testPresenceReplicas(t *testing.T, h PresenceHarness) {
	clock := NewClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC))
	a, b, bus := h.New(t, ttl, clock.Now)
	ctx := context.Background()
	env := envID(t)
	sub := subscribe(t, bus, fluxgate.EnvironmentTopic(env))

	if err := a.Join(ctx, env, fluxgate.PresenceEntry{UserID: "u-a", Name: "On A", Mode: fluxgate.PresenceViewing}); err != nil {
		t.Fatal(err)
	}
	expectChange(t, sub, env, fluxgate.PresenceJoin, "u-a")
	clock.Add(time.Millisecond)
	if err := b.Join(ctx, env, fluxgate.PresenceEntry{UserID: "u-b", Name: "On B", Mode: fluxgate.PresenceEditing}); err != nil {
		t.Fatal(err)
	}
	expectChange(t, sub, env, fluxgate.PresenceJoin, "u-b")
	expectUsers(t, a, env, "u-a", "u-b")
	expectUsers(t, b, env, "u-a", "u-b")

	if err := b.UpdateField(ctx, env, "u-a", "image"); err != nil {
		t.Fatalf("update from the other replica: %v", err)
	}
	expectChange(t, sub, env, fluxgate.PresenceUpdate, "u-a")
	if e := expectUsers(t, a, env, "u-a", "u-b")[0]; e.Field != "image" {
		t.Fatalf("field seen on A: %q", e.Field)
	}
	if err := b.Leave(ctx, env, "u-a"); err != nil {
		t.Fatal(err)
	}
	expectChange(t, sub, env, fluxgate.PresenceLeave, "u-a")
	expectUsers(t, a, env, "u-b")
}
