package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/internal/fanout"
)

// BusOptions tunes a Bus. Zero values take defaults.
type BusOptions struct {
	// Prefix is put before every topic to make its channel name
	// (DefaultPrefix if empty).
	Prefix string
	// BufferSize is how many events a subscriber may lag behind before it
	// is cut off (fanout.DefaultBufferSize if 0).
	BufferSize int
	// HealthCheck is how long the pub/sub connection may stay silent
	// before the bus pings it (default 5s).
	HealthCheck time.Duration
	// SubscribeTimeout bounds how long Subscribe waits for Redis to confirm
	// a new SUBSCRIBE (default 5s). When Redis is down Subscribe returns
	// anyway; the subscription starts with an EventResync once Redis
	// confirms.
	SubscribeTimeout time.Duration
	Logger           *slog.Logger // slog.Default() if nil
	Now              func() time.Time
}

// Bus is a fluxgate.EventBus on Redis pub/sub.
type Bus struct {
	client *goredis.Client
	ps     *goredis.PubSub
	opts   BusOptions
	reg    *fanout.Registry

	ctx    context.Context // ends when the bus is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// subMu orders the SUBSCRIBE and UNSUBSCRIBE commands of a topic with
	// the arrival of its first and departure of its last local subscriber.
	subMu sync.Mutex

	mu     sync.Mutex
	topics map[string]*topicState
	down   bool // the connection was lost and is not back yet
	closed bool
}

// topicState tracks a topic's Redis subscription.
type topicState struct {
	pending int           // SUBSCRIBE commands not yet confirmed
	ready   chan struct{} // closed when Redis first confirmed
	resync  bool          // deliver EventResync at the next confirmation
}

var _ fluxgate.EventBus = (*Bus)(nil)

// NewBus returns a bus publishing and subscribing through client. Close
// the bus before the client.
func NewBus(client *goredis.Client, opts BusOptions) *Bus {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.HealthCheck <= 0 {
		opts.HealthCheck = 5 * time.Second
	}
	if opts.SubscribeTimeout <= 0 {
		opts.SubscribeTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		client: client,
		ps:     client.Subscribe(ctx),
		opts:   opts,
		ctx:    ctx,
		cancel: cancel,
		topics: make(map[string]*topicState),
	}
	b.reg = fanout.New(opts.BufferSize, b.lastLeft)
	b.wg.Add(1)
	go b.receive()
	return b
}

// Channel returns the Redis channel of topic.
func (b *Bus) Channel(topic string) string { return b.opts.Prefix + topic }

// Publish sends ev to the subscribers of topic in every replica. It fails
// when Redis cannot be reached; the caller has stored the event already,
// so subscribers that resume from a cursor still get it.
func (b *Bus) Publish(ctx context.Context, topic string, ev fluxgate.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := b.client.Publish(ctx, b.Channel(topic), data).Err(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe starts a subscription to topic; it ends when ctx is done. When
// Redis confirms the topic's SUBSCRIBE within SubscribeTimeout, every
// event published after Subscribe returns is delivered.
func (b *Bus) Subscribe(ctx context.Context, topic string) (fluxgate.Subscription, error) {
	b.subMu.Lock()
	sub, first, err := b.reg.Add(ctx, topic)
	if err != nil {
		b.subMu.Unlock()
		return nil, err
	}
	b.mu.Lock()
	st := b.topics[topic]
	if st == nil {
		st = &topicState{ready: make(chan struct{})}
		b.topics[topic] = st
	}
	if first {
		st.pending++
	}
	wait := !b.down // while Redis is unreachable, do not wait for it
	b.mu.Unlock()
	if first {
		if err := b.ps.Subscribe(ctx, b.Channel(topic)); err != nil {
			// go-redis remembers the channel and subscribes when it
			// reconnects; that confirmation triggers a resync.
			b.mu.Lock()
			if st.pending > 0 { // lost() may have reset it meanwhile
				st.pending--
			}
			st.resync = true
			b.mu.Unlock()
			wait = false
			b.opts.Logger.Warn("redis subscribe failed; will resync when connected", "topic", topic, "error", err)
		}
	}
	b.subMu.Unlock()
	if !wait {
		b.mu.Lock()
		st.resync = true
		b.mu.Unlock()
		return sub, nil
	}

	timer := time.NewTimer(b.opts.SubscribeTimeout)
	defer timer.Stop()
	select {
	case <-st.ready:
	case <-ctx.Done():
		sub.Close()
		return nil, ctx.Err()
	case <-timer.C:
		b.mu.Lock()
		st.resync = true
		b.mu.Unlock()
	}
	return sub, nil
}

// lastLeft is called when the last local subscriber of topic left.
func (b *Bus) lastLeft(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.wg.Add(1) // under mu, so never concurrent with Close's Wait
	go func() {
		defer b.wg.Done()
		b.subMu.Lock()
		defer b.subMu.Unlock()
		if b.reg.Has(topic) || b.ctx.Err() != nil {
			return // someone subscribed again meanwhile, or closing
		}
		b.mu.Lock()
		delete(b.topics, topic)
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.SubscribeTimeout)
		defer cancel()
		// go-redis forgets the channel even when the command fails, so a
		// reconnect does not subscribe it again.
		if err := b.ps.Unsubscribe(ctx, b.Channel(topic)); err != nil && b.ctx.Err() == nil {
			b.opts.Logger.Debug("redis unsubscribe failed", "topic", topic, "error", err)
		}
	}()
}

// receive reads the pub/sub connection until the bus is closed.
func (b *Bus) receive() {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		msg, err := b.ps.ReceiveTimeout(b.ctx, b.opts.HealthCheck)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				// Silence: make sure the connection is still there.
				ctx, cancel := context.WithTimeout(b.ctx, b.opts.HealthCheck)
				err = b.ps.Ping(ctx)
				cancel()
				if err == nil {
					continue
				}
			}
			b.lost(err)
			select {
			case <-time.After(backoff):
			case <-b.ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Message:
			b.dispatch(m)
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.confirmed(m.Channel)
			}
		}
	}
}

// lost records that the pub/sub connection failed: go-redis reconnects and
// subscribes again to every channel, and each topic resyncs when Redis
// confirms it.
func (b *Bus) lost(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		b.opts.Logger.Warn("redis pub/sub connection lost; reconnecting", "error", err)
		b.down = true
	}
	for _, st := range b.topics {
		st.pending = 0 // commands on the dead connection will never be confirmed
		st.resync = true
	}
}

func (b *Bus) confirmed(channel string) {
	topic, ok := strings.CutPrefix(channel, b.opts.Prefix)
	if !ok {
		return
	}
	b.mu.Lock()
	if b.down {
		b.opts.Logger.Info("redis pub/sub connection back")
		b.down = false
	}
	st := b.topics[topic]
	if st == nil {
		b.mu.Unlock()
		return
	}
	if st.pending > 0 {
		st.pending--
	}
	if st.pending > 0 {
		b.mu.Unlock()
		return
	}
	select {
	case <-st.ready:
	default:
		close(st.ready)
	}
	resync := st.resync
	st.resync = false
	b.mu.Unlock()

	if resync {
		b.reg.Deliver(topic, fluxgate.Event{Type: fluxgate.EventResync, At: b.opts.Now()})
	}
}

func (b *Bus) dispatch(m *goredis.Message) {
	topic, ok := strings.CutPrefix(m.Channel, b.opts.Prefix)
	if !ok {
		return
	}
	var ev fluxgate.Event
	if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil {
		b.opts.Logger.Warn("undecodable event on redis channel", "channel", m.Channel, "error", err)
		return
	}
	b.reg.Deliver(topic, ev)
}

// Close ends every subscription with fluxgate.ErrBusClosed and releases
// the pub/sub connection; it does not close the client.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.reg.Close()
	b.cancel()
	err := b.ps.Close()
	b.wg.Wait()
	if err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("close redis pubsub: %w", err)
	}
	return nil
}
