// Package bustest is the conformance suite every fluxgate.EventBus and
// fluxgate.PresenceStore implementation passes: RunBus and RunPresence,
// run by inmem and redis on their own backend.
package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
)

// BusHarness opens buses on one backend.
type BusHarness struct {
	// New returns a bus whose subscribers buffer bufferSize events. Buses
	// returned for the same test share a backend, like replicas: an event
	// published on one reaches the subscribers of all. The harness closes
	// them when the test ends.
	New func(t testing.TB, bufferSize int) fluxgate.EventBus
	// BackendSubscriptions, if set, returns how many backend subscriptions
	// serve topic (Redis: PUBSUB NUMSUB of its channel).
	BackendSubscriptions func(t testing.TB, topic string) int
	// Disconnect, if set, drops bus's connections to the backend (Redis:
	// CLIENT KILL) as a network failure would.
	Disconnect func(t testing.TB, bus fluxgate.EventBus)
}

// wait is how long a test waits for an event that should arrive.
const wait = 10 * time.Second

// RunBus runs the bus conformance suite.
func RunBus(t *testing.T, h BusHarness) {
	t.Run("OrderedDelivery", func(t *testing.T) { testOrderedDelivery(t, h) })
	t.Run("FanOut", func(t *testing.T) { testFanOut(t, h) })
	t.Run("TopicIsolation", func(t *testing.T) { testTopicIsolation(t, h) })
	t.Run("AcrossReplicas", func(t *testing.T) { testAcrossReplicas(t, h) })
	t.Run("SlowSubscriberCutOff", func(t *testing.T) { testSlowSubscriber(t, h) })
	t.Run("UnsubscribeRefCount", func(t *testing.T) { testRefCount(t, h) })
	t.Run("ContextEndsSubscription", func(t *testing.T) { testContextEnds(t, h) })
	t.Run("CloseEndsSubscriptions", func(t *testing.T) { testClose(t, h) })
	t.Run("DisconnectResyncNoLoss", func(t *testing.T) {
		if h.Disconnect == nil {
			t.Skip("this backend cannot lose its connection")
		}
		testDisconnect(t, h)
	})
}

// topic returns a topic name unique to the test.
func topic(t testing.TB, name string) string {
	return fluxgate.ProjectTopic(fmt.Sprintf("%s/%s/%d", t.Name(), name, time.Now().UnixNano()))
}

func event(project string, seq int64) fluxgate.Event {
	return fluxgate.Event{
		Type:      fluxgate.EventFluxEvent,
		ProjectID: project,
		Seq:       seq,
		Payload:   json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq)),
		At:        time.Unix(1700000000, seq).UTC(),
	}
}

func publish(t testing.TB, bus fluxgate.Publisher, topic string, ev fluxgate.Event) {
	t.Helper()
	if err := bus.Publish(context.Background(), topic, ev); err != nil {
		t.Fatalf("publish %s seq %d: %v", topic, ev.Seq, err)
	}
}

func subscribe(t testing.TB, bus fluxgate.EventBus, topic string) fluxgate.Subscription {
	t.Helper()
	sub, err := bus.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// recv returns the next event that is not an EventResync.
func recv(t testing.TB, sub fluxgate.Subscription) fluxgate.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription closed early: %v", sub.Err())
			}
			if ev.Type == fluxgate.EventResync {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no event within", wait)
		}
	}
}

// expectNone fails if sub receives an event within d.
func expectNone(t testing.TB, sub fluxgate.Subscription, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-sub.C():
		if ok {
			t.Fatalf("unexpected event %s seq %d for project %q", ev.Type, ev.Seq, ev.ProjectID)
		}
		t.Fatalf("subscription closed: %v", sub.Err())
	case <-time.After(d):
	}
}

// expectClosed waits until sub's channel is closed, draining it, and
// returns how many events were still in it.
func expectClosed(t testing.TB, sub fluxgate.Subscription) int {
	t.Helper()
	n := 0
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return n
			}
			n++
		case <-timeout:
			t.Fatal("subscription not closed within", wait)
		}
	}
}

func sameEvent(t testing.TB, got, want fluxgate.Event) {
	t.Helper()
	if got.Type != want.Type || got.ProjectID != want.ProjectID || got.Seq != want.Seq ||
		string(got.Payload) != string(want.Payload) || !got.At.Equal(want.At) {
		t.Fatalf("got event %+v, want %+v", got, want)
	}
}

func testOrderedDelivery(t *testing.T, h BusHarness) {
	bus := h.New(t, 512)
	tp := topic(t, "a")
	sub := subscribe(t, bus, tp)
	for i := int64(1); i <= 300; i++ {
		publish(t, bus, tp, event("a", i))
	}
	for i := int64(1); i <= 300; i++ {
		sameEvent(t, recv(t, sub), event("a", i))
	}
}

func testFanOut(t *testing.T, h BusHarness) {
	bus := h.New(t, 64)
	tp := topic(t, "a")
	subs := make([]fluxgate.Subscription, 100)
	for i := range subs {
		subs[i] = subscribe(t, bus, tp)
	}
	for i := int64(1); i <= 20; i++ {
		publish(t, bus, tp, event("a", i))
	}
	for n, sub := range subs {
		for i := int64(1); i <= 20; i++ {
			if ev := recv(t, sub); ev.Seq != i {
				t.Fatalf("subscriber %d: got seq %d, want %d", n, ev.Seq, i)
			}
		}
	}
}

func testTopicIsolation(t *testing.T, h BusHarness) {
	bus := h.New(t, 64)
	ta, tb := topic(t, "a"), topic(t, "b")
	subA, subB := subscribe(t, bus, ta), subscribe(t, bus, tb)
	for i := int64(1); i <= 10; i++ {
		publish(t, bus, tb, event("b", i))
		publish(t, bus, ta, event("a", i))
	}
	for i := int64(1); i <= 10; i++ {
		if ev := recv(t, subA); ev.ProjectID != "a" || ev.Seq != i {
			t.Fatalf("subscriber of a got project %q seq %d", ev.ProjectID, ev.Seq)
		}
		if ev := recv(t, subB); ev.ProjectID != "b" || ev.Seq != i {
			t.Fatalf("subscriber of b got project %q seq %d", ev.ProjectID, ev.Seq)
		}
	}
	expectNone(t, subA, 100*time.Millisecond)
	expectNone(t, subB, 0)
}

func testAcrossReplicas(t *testing.T, h BusHarness) {
	a, b := h.New(t, 64), h.New(t, 64)
	tp := topic(t, "a")
	subA, subB := subscribe(t, a, tp), subscribe(t, b, tp)
	publish(t, a, tp, event("a", 1))
	publish(t, b, tp, event("a", 2))
	for _, sub := range []fluxgate.Subscription{subA, subB} {
		sameEvent(t, recv(t, sub), event("a", 1))
		sameEvent(t, recv(t, sub), event("a", 2))
	}
}

func testSlowSubscriber(t *testing.T, h BusHarness) {
	const buffer, total = 8, 100
	bus := h.New(t, buffer)
	tp := topic(t, "a")
	slow := subscribe(t, bus, tp)
	fast := subscribe(t, bus, tp)

	// Publish one event at a time and wait for the fast subscriber to get
	// it: the slow one, never reading, overflows at event buffer+1.
	for i := int64(1); i <= total; i++ {
		publish(t, bus, tp, event("a", i))
		if ev := recv(t, fast); ev.Seq != i {
			t.Fatalf("fast subscriber: got seq %d, want %d", ev.Seq, i)
		}
	}
	if n := expectClosed(t, slow); n > buffer {
		t.Fatalf("slow subscriber had %d events buffered, more than %d", n, buffer)
	}
	if !errors.Is(slow.Err(), fluxgate.ErrSubscriberTooSlow) {
		t.Fatalf("slow subscriber Err = %v, want ErrSubscriberTooSlow", slow.Err())
	}
	if fast.Err() != nil {
		t.Fatalf("fast subscriber Err = %v", fast.Err())
	}
}

func testRefCount(t *testing.T, h BusHarness) {
	bus := h.New(t, 64)
	tp := topic(t, "a")
	backend := func(want int) {
		t.Helper()
		if h.BackendSubscriptions == nil {
			return
		}
		deadline := time.Now().Add(wait)
		for {
			got := h.BackendSubscriptions(t, tp)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("backend subscriptions of %s = %d, want %d", tp, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	backend(0)
	subs := []fluxgate.Subscription{subscribe(t, bus, tp), subscribe(t, bus, tp), subscribe(t, bus, tp)}
	backend(1)
	subs[0].Close()
	subs[1].Close()
	if n := expectClosed(t, subs[0]); n != 0 || subs[0].Err() != nil {
		t.Fatalf("closed subscription: %d events left, Err %v", n, subs[0].Err())
	}
	backend(1)
	publish(t, bus, tp, event("a", 1))
	if ev := recv(t, subs[2]); ev.Seq != 1 {
		t.Fatalf("remaining subscriber got seq %d", ev.Seq)
	}
	subs[2].Close()
	backend(0)

	again := subscribe(t, bus, tp)
	backend(1)
	publish(t, bus, tp, event("a", 2))
	if ev := recv(t, again); ev.Seq != 2 {
		t.Fatalf("resubscribed subscriber got seq %d", ev.Seq)
	}
}

func testContextEnds(t *testing.T, h BusHarness) {
	bus := h.New(t, 64)
	tp := topic(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bus.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	other := subscribe(t, bus, tp)
	cancel()
	expectClosed(t, sub)
	if sub.Err() != nil {
		t.Fatalf("Err after cancel = %v, want nil", sub.Err())
	}
	publish(t, bus, tp, event("a", 1))
	if ev := recv(t, other); ev.Seq != 1 {
		t.Fatalf("other subscriber got seq %d", ev.Seq)
	}
	if _, err := bus.Subscribe(ctx, tp); err == nil {
		t.Fatal("Subscribe with a done context succeeded")
	}
}

func testClose(t *testing.T, h BusHarness) {
	bus := h.New(t, 64)
	sub := subscribe(t, bus, topic(t, "a"))
	if err := bus.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	expectClosed(t, sub)
	if !errors.Is(sub.Err(), fluxgate.ErrBusClosed) {
		t.Fatalf("Err after bus close = %v, want ErrBusClosed", sub.Err())
	}
	if _, err := bus.Subscribe(context.Background(), topic(t, "b")); err == nil {
		t.Fatal("Subscribe on a closed bus succeeded")
	}
}

// eventLog plays the database: events are appended (and get their Seq)
// before they are published, and replayed from it.
type eventLog struct {
	mu     sync.Mutex
	events []fluxgate.Event
}

func (l *eventLog) append(project string) fluxgate.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := event(project, int64(len(l.events)+1))
	l.events = append(l.events, ev)
	return ev
}

func (l *eventLog) replay(_ context.Context, after int64) ([]fluxgate.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if after >= int64(len(l.events)) {
		return nil, nil
	}
	return append([]fluxgate.Event(nil), l.events[after:]...), nil
}

func testDisconnect(t *testing.T, h BusHarness) {
	const total = 400
	pubBus, subBus := h.New(t, 1024), h.New(t, 1024)
	tp := topic(t, "a")
	var log eventLog

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Events before the client connects; it starts at the head, as a
	// resolver does for a client without a cursor.
	const before = 5
	for range before {
		log.append("a")
	}
	raw := subscribe(t, subBus, tp)
	stream, err := hub.New(subBus, hub.Options{}).Subscribe(ctx, hub.Request{Topic: tp, After: before, Replay: log.replay})
	if err != nil {
		t.Fatal(err)
	}

	published := make(chan error, 1)
	disconnect := make(chan struct{}, 2)
	go func() {
		for i := 0; i < total; i++ {
			ev := log.append("a")
			// Keep publishing through the publisher's own reconnects.
			var err error
			for try := 0; try < 50; try++ {
				if err = pubBus.Publish(ctx, tp, ev); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				published <- fmt.Errorf("publish seq %d: %w", ev.Seq, err)
				return
			}
			if i == total/4 || i == total/2 {
				disconnect <- struct{}{}
			}
			time.Sleep(time.Millisecond)
		}
		published <- nil
	}()

	for want := int64(before + 1); want <= before+total; {
		select {
		case <-disconnect:
			h.Disconnect(t, subBus)
		case ev, ok := <-stream.C():
			if !ok {
				t.Fatalf("stream ended at seq %d: %v", want, stream.Err())
			}
			if ev.Seq != want {
				t.Fatalf("got seq %d, want %d: an event was lost or repeated", ev.Seq, want)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("seq %d not received", want)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}

	// The raw subscriber was told that it may have missed events.
	resyncs := 0
	for resyncs == 0 {
		select {
		case ev, ok := <-raw.C():
			if !ok {
				t.Fatalf("raw subscription ended: %v", raw.Err())
			}
			if ev.Type == fluxgate.EventResync {
				resyncs++
			}
		case <-time.After(wait):
			t.Fatal("no EventResync after the connection was dropped")
		}
	}
	select {
	case ev := <-stream.C():
		t.Fatalf("extra event after the last one: seq %d", ev.Seq)
	case <-time.After(100 * time.Millisecond):
	}
}
