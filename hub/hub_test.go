package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
)

const topic = "project:p1"

// store plays the database: an event is appended, getting the next Seq,
// before it is published.
type store struct {
	mu       sync.Mutex
	events   []fluxgate.Event
	pageSize int // 0: replay returns everything
	calls    int
	onReplay func() // called at the start of each replay, without the lock
	onRead   func() // called after each replay read the events
	fail     error
}

func fluxEvent(seq int64) fluxgate.Event {
	return fluxgate.Event{
		Type: fluxgate.EventFluxEvent, ProjectID: "p1", Seq: seq,
		Payload: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq)),
	}
}

func (s *store) append() fluxgate.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := fluxEvent(int64(len(s.events) + 1))
	s.events = append(s.events, ev)
	return ev
}

func (s *store) replay(_ context.Context, after int64) ([]fluxgate.Event, error) {
	s.mu.Lock()
	hook := s.onReplay
	s.calls++
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	if s.fail != nil {
		s.mu.Unlock()
		return nil, s.fail
	}
	var out []fluxgate.Event
	for _, ev := range s.events {
		if ev.Seq > after && (s.pageSize == 0 || len(out) < s.pageSize) {
			out = append(out, ev)
		}
	}
	read := s.onRead
	s.mu.Unlock()
	if read != nil {
		read()
	}
	return out, nil
}

// record appends n events to the store and publishes them.
func (s *store) record(t testing.TB, bus fluxgate.Publisher, n int) {
	t.Helper()
	for range n {
		if err := bus.Publish(context.Background(), topic, s.append()); err != nil {
			t.Fatal(err)
		}
	}
}

func newHub(t testing.TB, bufferSize int) (*hub.Hub, *inmem.Bus) {
	bus := inmem.NewBus(bufferSize)
	t.Cleanup(func() { bus.Close() })
	return hub.New(bus, hub.Options{}), bus
}

// expectSeqs reads the stream and checks it gets exactly from..to in order.
func expectSeqs(t testing.TB, s *hub.Stream[fluxgate.Event], from, to int64) {
	t.Helper()
	for want := from; want <= to; want++ {
		select {
		case ev, ok := <-s.C():
			if !ok {
				t.Fatalf("stream ended before seq %d: %v", want, s.Err())
			}
			if ev.Seq != want {
				t.Fatalf("got seq %d, want %d", ev.Seq, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("seq %d not received", want)
		}
	}
}

func expectQuiet(t testing.TB, s *hub.Stream[fluxgate.Event]) {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if ok {
			t.Fatalf("unexpected event %s seq %d", ev.Type, ev.Seq)
		}
		t.Fatalf("stream ended: %v", s.Err())
	case <-time.After(50 * time.Millisecond):
	}
}

func TestReplayMissedEventsInOrder(t *testing.T) {
	h, bus := newHub(t, 0)
	var db store
	db.record(t, bus, 150) // nobody listens: the client was away

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, After: 50, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, s, 51, 150) // the 100 missed events
	db.record(t, bus, 5)
	expectSeqs(t, s, 151, 155)
	expectQuiet(t, s)
}

func TestSeamHasNoGapNoDuplicate(t *testing.T) {
	h, bus := newHub(t, 256)
	var db store
	db.record(t, bus, 20)
	// While the replay runs, 30 more events are stored and published: the
	// replay returns some of them and the live subscription has them all.
	var before, after sync.Once
	db.onReplay = func() { before.Do(func() { db.record(t, bus, 30) }) }
	// And 10 more after it read: only the live subscription has those.
	db.onRead = func() { after.Do(func() { db.record(t, bus, 10) }) }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, After: 10, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	db.record(t, bus, 10)
	expectSeqs(t, s, 11, 70)
	expectQuiet(t, s)
}

func TestPagedReplay(t *testing.T) {
	h, bus := newHub(t, 0)
	db := store{pageSize: 7}
	db.record(t, bus, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, After: 1, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, s, 2, 100)
	expectQuiet(t, s)
}

func TestNoCursorResyncBackfillsFromFirstSeen(t *testing.T) {
	h, bus := newHub(t, 0)
	var db store
	for range 9 {
		db.append() // before the stream: never sent
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	if db.calls != 0 {
		t.Fatalf("replayed %d times without a cursor", db.calls)
	}
	db.record(t, bus, 3)
	expectSeqs(t, s, 10, 12)
	for range 3 {
		db.append() // lost by the bus
	}
	if err := bus.Publish(ctx, topic, fluxgate.Event{Type: fluxgate.EventResync}); err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, s, 13, 15)
	expectQuiet(t, s)
}

func TestResyncBackfillsFromLastSeen(t *testing.T) {
	h, bus := newHub(t, 0)
	var db store
	db.record(t, bus, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, After: 5, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	db.record(t, bus, 5)
	expectSeqs(t, s, 6, 10)

	// The bus lost events 11..40 (stored, never delivered), then says so.
	for range 30 {
		db.append()
	}
	if err := bus.Publish(ctx, topic, fluxgate.Event{Type: fluxgate.EventResync}); err != nil {
		t.Fatal(err)
	}
	db.record(t, bus, 5) // 41..45 arrive live and are in the backfill too
	expectSeqs(t, s, 11, 45)
	expectQuiet(t, s)
}

func TestOutOfOrderLiveEventsAreKept(t *testing.T) {
	h, bus := newHub(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic, After: 0, Replay: func(context.Context, int64) ([]fluxgate.Event, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	// Two replicas stored 2 and 1 but published 2 first; 2 comes again.
	for _, seq := range []int64{2, 1, 2, 3} {
		if err := bus.Publish(ctx, topic, fluxEvent(seq)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int64{2, 1, 3} {
		if ev := <-s.C(); ev.Seq != want {
			t.Fatalf("got seq %d, want %d", ev.Seq, want)
		}
	}
	expectQuiet(t, s)
}

func TestLiveOnlyPassesEverythingThrough(t *testing.T) {
	h, bus := newHub(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	status := fluxgate.Event{Type: fluxgate.EventResourceStatus, ProjectID: "p1", Payload: json.RawMessage(`{}`)}
	for _, ev := range []fluxgate.Event{status, {Type: fluxgate.EventResync}, status} {
		if err := bus.Publish(ctx, topic, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{fluxgate.EventResourceStatus, fluxgate.EventResync, fluxgate.EventResourceStatus} {
		if ev := <-s.C(); ev.Type != want {
			t.Fatalf("got %s, want %s", ev.Type, want)
		}
	}
}

func TestConvertRunsInTheStream(t *testing.T) {
	h, bus := newHub(t, 0)
	var db store
	db.record(t, bus, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := hub.Subscribe(ctx, h, hub.Request{Topic: topic, After: 1, Replay: db.replay},
		func(ev fluxgate.Event) (string, bool) {
			if ev.Type != fluxgate.EventFluxEvent {
				return "", false
			}
			return strconv.FormatInt(ev.Seq, 10), true
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, topic, fluxgate.Event{Type: fluxgate.EventResourceStatus}); err != nil {
		t.Fatal(err)
	}
	db.record(t, bus, 1)
	for _, want := range []string{"2", "3", "4"} {
		if got := <-s.C(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestSlowStreamIsCutOff(t *testing.T) {
	h, bus := newHub(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := h.Subscribe(ctx, hub.Request{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.Subscribe(ctx, hub.Request{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var db store
	for i := int64(1); i <= 50; i++ {
		db.record(t, bus, 1)
		expectSeqs(t, fast, i, i)
	}
	for range slow.C() {
	}
	if !errors.Is(slow.Err(), fluxgate.ErrSubscriberTooSlow) {
		t.Fatalf("slow stream Err = %v", slow.Err())
	}
}

func TestContextEndsStream(t *testing.T) {
	h, bus := newHub(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := h.Subscribe(ctx, hub.Request{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if h.Active() != 1 || bus.Subscribers(topic) != 1 {
		t.Fatalf("active %d, bus subscribers %d", h.Active(), bus.Subscribers(topic))
	}
	cancel()
	for range s.C() {
	}
	if s.Err() != nil {
		t.Fatalf("Err = %v", s.Err())
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.Active() != 0 || bus.Subscribers(topic) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after cancel: active %d, bus subscribers %d", h.Active(), bus.Subscribers(topic))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReplayErrors(t *testing.T) {
	h, bus := newHub(t, 0)
	db := store{fail: errors.New("database down")}
	if _, err := h.Subscribe(context.Background(), hub.Request{Topic: topic, After: 3, Replay: db.replay}); err == nil {
		t.Fatal("Subscribe succeeded although the replay failed")
	}
	if n := bus.Subscribers(topic); n != 0 {
		t.Fatalf("%d bus subscriptions left behind", n)
	}

	// A failing backfill ends the stream with the error.
	db.fail = nil
	s, err := h.Subscribe(context.Background(), hub.Request{Topic: topic, After: 3, Replay: db.replay})
	if err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	db.fail = errors.New("database down")
	db.mu.Unlock()
	if err := bus.Publish(context.Background(), topic, fluxgate.Event{Type: fluxgate.EventResync}); err != nil {
		t.Fatal(err)
	}
	for range s.C() {
	}
	if s.Err() == nil {
		t.Fatal("stream ended without the replay error")
	}
}
