// Package fanout is the local half of every fluxgate event bus: a registry
// of subscribers per topic and a non-blocking delivery to them. inmem uses
// it alone; redis puts one Redis SUBSCRIBE per topic in front of it.
//
// It costs no goroutine per subscriber: delivery is a non-blocking channel
// send from the publisher's (or the Redis reader's) goroutine, and context
// cancellation is watched with context.AfterFunc.
package fanout

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/fluxgate/fluxgate"
)

// DefaultBufferSize is the number of events a subscriber may lag behind
// before it is cut off as too slow.
const DefaultBufferSize = 64

// Registry holds the subscribers of each topic.
type Registry struct {
	bufferSize int
	// onEmpty, if set, is called without locks held after the last
	// subscriber of a topic left.
	onEmpty func(topic string)

	mu     sync.RWMutex
	topics map[string]map[*Sub]struct{}
	closed bool
}

// New returns a registry whose subscribers buffer bufferSize events
// (DefaultBufferSize if <= 0). onEmpty may be nil.
func New(bufferSize int, onEmpty func(topic string)) *Registry {
	if bufferSize <= 0 {
		bufferSize = DefaultBufferSize
	}
	return &Registry{
		bufferSize: bufferSize,
		onEmpty:    onEmpty,
		topics:     make(map[string]map[*Sub]struct{}),
	}
}

// Add registers a subscriber of topic. first reports whether it is the
// topic's only subscriber (the topic was not subscribed before). The
// subscriber is removed when ctx is done.
func (r *Registry) Add(ctx context.Context, topic string) (sub *Sub, first bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	sub = &Sub{reg: r, topic: topic, c: make(chan fluxgate.Event, r.bufferSize)}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, fluxgate.ErrBusClosed
	}
	subs := r.topics[topic]
	if subs == nil {
		subs = make(map[*Sub]struct{})
		r.topics[topic] = subs
		first = true
	}
	subs[sub] = struct{}{}
	// Registered under the lock: if ctx is done already, the callback waits
	// for the lock and then finds the subscriber registered.
	sub.stop = context.AfterFunc(ctx, func() { r.remove(sub, nil) })
	return sub, first, nil
}

// Deliver hands ev to every subscriber of topic without blocking. A
// subscriber whose buffer is full is closed with ErrSubscriberTooSlow. It
// returns the number of subscribers that received ev.
func (r *Registry) Deliver(topic string, ev fluxgate.Event) int {
	var slow []*Sub
	n := 0

	// Sends happen under the read lock and closes under the write lock, so
	// a send never races with a close.
	r.mu.RLock()
	for sub := range r.topics[topic] {
		if sub.cut.Load() {
			continue
		}
		select {
		case sub.c <- ev:
			n++
		default:
			sub.cut.Store(true)
			slow = append(slow, sub)
		}
	}
	r.mu.RUnlock()

	for _, sub := range slow {
		r.remove(sub, fluxgate.ErrSubscriberTooSlow)
	}
	return n
}

// Has reports whether topic has subscribers.
func (r *Registry) Has(topic string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.topics[topic]) > 0
}

// Count returns the number of subscribers of topic.
func (r *Registry) Count(topic string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.topics[topic])
}

// Topics returns the topics that have subscribers.
func (r *Registry) Topics() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	topics := make([]string, 0, len(r.topics))
	for t := range r.topics {
		topics = append(topics, t)
	}
	return topics
}

// Close ends every subscription with ErrBusClosed and refuses new ones.
func (r *Registry) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	topics := r.topics
	r.topics = make(map[string]map[*Sub]struct{})
	for _, subs := range topics {
		for sub := range subs {
			sub.end(fluxgate.ErrBusClosed)
		}
	}
	r.mu.Unlock()
}

func (r *Registry) remove(sub *Sub, reason error) {
	r.mu.Lock()
	subs, ok := r.topics[sub.topic]
	if _, member := subs[sub]; !ok || !member {
		r.mu.Unlock()
		return
	}
	delete(subs, sub)
	empty := len(subs) == 0
	if empty {
		delete(r.topics, sub.topic)
	}
	sub.end(reason)
	r.mu.Unlock()

	if empty && r.onEmpty != nil {
		r.onEmpty(sub.topic)
	}
}

// Sub is one subscription; it implements fluxgate.Subscription.
type Sub struct {
	reg   *Registry
	topic string
	c     chan fluxgate.Event
	cut   atomic.Bool
	stop  func() bool // stops the context watch

	once sync.Once
	err  atomic.Pointer[error]
}

var _ fluxgate.Subscription = (*Sub)(nil)

// C returns the event stream; it is closed when the subscription ends.
func (s *Sub) C() <-chan fluxgate.Event { return s.c }

// Err tells why the subscription ended: nil after Close or when its
// context was done, ErrSubscriberTooSlow, ErrBusClosed.
func (s *Sub) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close ends the subscription; it is safe to call more than once.
func (s *Sub) Close() { s.reg.remove(s, nil) }

// Topic returns the subscribed topic.
func (s *Sub) Topic() string { return s.topic }

// end closes the channel once; the caller holds the registry's write lock.
func (s *Sub) end(reason error) {
	s.once.Do(func() {
		if reason != nil {
			s.err.Store(&reason)
		}
		if s.stop != nil {
			s.stop()
		}
		close(s.c)
	})
}
