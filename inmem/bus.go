// Package inmem implements fluxgate's event bus and presence store inside
// one process: the embedded default when no REDIS_URL is configured.
package inmem

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/internal/fanout"
)

// Bus is an in-process fluxgate.EventBus. Publish delivers to every local
// subscriber of the topic without blocking; it never loses events other
// than to subscribers cut off as too slow, so it never sends EventResync.
type Bus struct {
	reg *fanout.Registry
}

var _ fluxgate.EventBus = (*Bus)(nil)

// NewBus returns a bus whose subscribers may lag bufferSize events behind
// before they are cut off (fanout.DefaultBufferSize if <= 0).
func NewBus(bufferSize int) *Bus {
	return &Bus{reg: fanout.New(bufferSize, nil)}
}

// Publish delivers ev to the current subscribers of topic.
func (b *Bus) Publish(ctx context.Context, topic string, ev fluxgate.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.reg.Deliver(topic, ev)
	return nil
}

// Subscribe starts a subscription to topic; it ends when ctx is done.
func (b *Bus) Subscribe(ctx context.Context, topic string) (fluxgate.Subscription, error) {
	sub, _, err := b.reg.Add(ctx, topic)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// Subscribers returns the number of subscriptions to topic.
func (b *Bus) Subscribers(topic string) int { return b.reg.Count(topic) }

// Close ends all subscriptions with fluxgate.ErrBusClosed.
func (b *Bus) Close() error {
	b.reg.Close()
	return nil
}
