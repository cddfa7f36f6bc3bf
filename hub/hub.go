// Package hub turns event bus subscriptions into the streams GraphQL
// subscription resolvers return, with resume from a cursor: a resumable
// stream replays from the database what happened after the client's last
// sequence, then continues live without a gap and without a duplicate at
// the seam, and backfills again whenever the bus says it may have lost
// events (fluxgate.EventResync).
//
// Each stream costs one goroutine (the one that blocks on the subscriber's
// channel) and one bus subscription; the bus itself runs no goroutine per
// subscriber.
package hub

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fluxgate/fluxgate"
)

// ReplayFunc returns the events of a topic with Seq > afterSeq in
// ascending Seq order, read from the database. It may return a limited
// page: the hub calls it again after the last Seq until it returns none.
// afterSeq is always > 0 (fluxgate.FluxEventFilter.AfterSeq semantics).
type ReplayFunc func(ctx context.Context, afterSeq int64) ([]fluxgate.Event, error)

// Request describes a stream.
type Request struct {
	Topic string
	// Replay makes the stream resumable. Nil: live events only, and
	// EventResync is passed to the stream for the caller to handle.
	Replay ReplayFunc
	// After is the cursor of a resumable stream: the last Seq the client
	// has; events up to it are never sent. A client without a cursor
	// should be given the topic's current last Seq, so that a resync can
	// backfill from there. With 0 nothing is replayed until the stream has
	// seen a sequenced event (then resyncs backfill from the first one).
	After int64
}

// Options tunes a hub. Zero values take defaults.
type Options struct {
	// StreamBuffer is the capacity of each stream's channel (default 4,
	// negative for unbuffered). A few slots let the stream's goroutine and
	// its reader run without a handoff per event; the bus subscription
	// buffers the rest.
	StreamBuffer int
	// Window is how many recent sequences a stream remembers to drop
	// duplicates that arrive out of order (default 64).
	Window int
	Logger *slog.Logger     // slog.Default() if nil
	Now    func() time.Time // time.Now if nil; stamps presence entries
}

// Hub hands out streams of one process. It is safe for concurrent use.
type Hub struct {
	bus    fluxgate.EventBus
	opts   Options
	active atomic.Int64
}

// New returns a hub reading from bus.
func New(bus fluxgate.EventBus, opts Options) *Hub {
	if opts.Window <= 0 {
		opts.Window = 64
	}
	switch {
	case opts.StreamBuffer == 0:
		opts.StreamBuffer = 4
	case opts.StreamBuffer < 0:
		opts.StreamBuffer = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hub{bus: bus, opts: opts}
}

// Active returns the number of open streams.
func (h *Hub) Active() int { return int(h.active.Load()) }

// Stream is a subscriber's stream. C is closed when the stream ends: its
// context is done (Err nil), the bus cut it off as too slow or was closed,
// or a replay failed (Err says which).
type Stream[T any] struct {
	c   chan T
	err atomic.Pointer[error]
}

// C returns the channel to read; return it from a subscription resolver.
func (s *Stream[T]) C() <-chan T { return s.c }

// Err tells why the stream ended; read it after C is closed.
func (s *Stream[T]) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Subscribe opens a stream of raw events. See Subscribe (the function) for
// the details.
func (h *Hub) Subscribe(ctx context.Context, req Request) (*Stream[fluxgate.Event], error) {
	return Subscribe(ctx, h, req, func(ev fluxgate.Event) (fluxgate.Event, bool) { return ev, true })
}

// Subscribe opens a stream of req.Topic whose events are mapped by convert
// (return false to skip an event) inside the stream's own goroutine, so a
// resolver needs no goroutine of its own. The bus subscription is taken
// before the first replay, so nothing published meanwhile is missed; the
// first replay page is read before Subscribe returns and its error is
// returned. The stream ends when ctx is done.
func Subscribe[T any](ctx context.Context, h *Hub, req Request, convert func(fluxgate.Event) (T, bool)) (*Stream[T], error) {
	sub, err := h.bus.Subscribe(ctx, req.Topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", req.Topic, err)
	}
	var first []fluxgate.Event
	if req.Replay != nil && req.After > 0 {
		if first, err = req.Replay(ctx, req.After); err != nil {
			sub.Close()
			return nil, fmt.Errorf("replay %s after %d: %w", req.Topic, req.After, err)
		}
	}

	s := &Stream[T]{c: make(chan T, h.opts.StreamBuffer)}
	r := &runner[T]{
		hub: h, req: req, sub: sub, stream: s, convert: convert,
		seen: window{floor: req.After, size: h.opts.Window},
	}
	h.active.Add(1)
	go r.run(ctx, first)
	return s, nil
}

type runner[T any] struct {
	hub     *Hub
	req     Request
	sub     fluxgate.Subscription
	stream  *Stream[T]
	convert func(fluxgate.Event) (T, bool)
	seen    window
}

func (r *runner[T]) run(ctx context.Context, first []fluxgate.Event) {
	// Deferred in this order so that a reader who sees C closed finds the
	// stream fully ended: unsubscribed and no longer counted.
	defer close(r.stream.c)
	defer r.hub.active.Add(-1)
	defer r.sub.Close()

	if r.req.Replay != nil && r.req.After > 0 && !r.backfill(ctx, r.req.After, first) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-r.sub.C():
			if !ok {
				r.fail(ctx, r.sub.Err())
				return
			}
			if ev.Type == fluxgate.EventResync && r.req.Replay != nil {
				// Everything up to the window's base was delivered (or
				// is too old to matter); the window drops what was
				// delivered above it.
				if base := r.seen.base(); base > 0 && !r.backfill(ctx, base, nil) {
					return
				}
				continue
			}
			if !r.send(ctx, ev) {
				return
			}
		}
	}
}

// backfill sends the replayed events after seq, starting with page if
// given. It returns false when the stream must end.
func (r *runner[T]) backfill(ctx context.Context, after int64, page []fluxgate.Event) bool {
	for {
		if page == nil {
			var err error
			if page, err = r.req.Replay(ctx, after); err != nil {
				if ctx.Err() == nil {
					r.fail(ctx, fmt.Errorf("replay %s after %d: %w", r.req.Topic, after, err))
				}
				return false
			}
		}
		if len(page) == 0 {
			return true
		}
		progressed := false
		for _, ev := range page {
			if ev.Seq > after {
				after, progressed = ev.Seq, true
			}
			if !r.send(ctx, ev) {
				return false
			}
		}
		if !progressed {
			return true
		}
		page = nil
	}
}

// send delivers ev unless it is a duplicate; false when ctx is done.
func (r *runner[T]) send(ctx context.Context, ev fluxgate.Event) bool {
	if ev.Seq > 0 && !r.seen.add(ev.Seq) {
		return true
	}
	v, ok := r.convert(ev)
	if !ok {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case r.stream.c <- v:
		return true
	}
}

func (r *runner[T]) fail(ctx context.Context, err error) {
	r.stream.fail(ctx, r.hub.opts.Logger, r.req.Topic, err)
}

// fail records why the stream ends, if err is not nil, and tells the
// context's stream error function (fluxgate.NewContextWithStreamErrorFunc)
// before C is closed.
func (s *Stream[T]) fail(ctx context.Context, log *slog.Logger, topic string, err error) {
	if err == nil {
		return
	}
	s.err.Store(&err)
	log.Warn("event stream ended", "topic", topic, "error", err)
	if f := fluxgate.StreamErrorFuncFromContext(ctx); f != nil {
		f(err)
	}
}

// window remembers which sequences a stream delivered: all up to floor,
// and the (at most size) delivered ones above it, in ascending order.
// Remembering a set rather than the highest sequence matters because
// events from different replicas may reach the bus out of sequence order.
type window struct {
	floor int64
	size  int
	seqs  []int64
}

// base is the sequence a backfill starts after: the floor, or for a
// stream that started without a cursor, just before the first sequence it
// saw (0 if it saw none).
func (w *window) base() int64 {
	if w.floor == 0 && len(w.seqs) > 0 {
		return w.seqs[0] - 1
	}
	return w.floor
}

// add records seq and reports whether it was new.
func (w *window) add(seq int64) bool {
	if seq <= w.floor {
		return false
	}
	i, found := slices.BinarySearch(w.seqs, seq)
	if found {
		return false
	}
	w.seqs = slices.Insert(w.seqs, i, seq)
	if len(w.seqs) > w.size {
		w.floor = w.seqs[0]
		w.seqs = append(w.seqs[:0], w.seqs[1:]...)
	}
	return true
}
