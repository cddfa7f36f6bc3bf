package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxgate/fluxgate"
)

// PresenceRequest describes a presence stream: the caller is present on
// EnvironmentID as Entry for as long as the stream runs.
type PresenceRequest struct {
	EnvironmentID string
	Entry         fluxgate.PresenceEntry
	// Heartbeat is how often the entry is refreshed (default 10s, a third
	// of fluxgate.DefaultPresenceTTL). Each heartbeat also lets the store
	// expire the entries of dead replicas.
	Heartbeat time.Duration
}

// Presence joins req.Entry to the environment and returns a stream of the
// full list of people present, sent at once and after every change. The
// entry is heartbeated while the stream runs (and joined again if it
// expired meanwhile) and leaves when ctx is done. One goroutine per stream.
func (h *Hub) Presence(ctx context.Context, store fluxgate.PresenceStore, req PresenceRequest) (*Stream[[]fluxgate.PresenceEntry], error) {
	if req.Heartbeat <= 0 {
		req.Heartbeat = fluxgate.DefaultPresenceTTL / 3
	}
	if req.Entry.Since.IsZero() {
		req.Entry.Since = h.opts.Now()
	}
	env := req.EnvironmentID
	// Subscribe first, so that no change after the first list is missed.
	sub, err := h.bus.Subscribe(ctx, fluxgate.EnvironmentTopic(env))
	if err != nil {
		return nil, fmt.Errorf("subscribe presence of %s: %w", env, err)
	}
	if err := store.Join(ctx, env, req.Entry); err != nil {
		sub.Close()
		return nil, fmt.Errorf("join presence of %s: %w", env, err)
	}
	s := &Stream[[]fluxgate.PresenceEntry]{c: make(chan []fluxgate.PresenceEntry, 1)}
	h.active.Add(1)
	go h.runPresence(ctx, store, req, sub, s)
	return s, nil
}

func (h *Hub) runPresence(ctx context.Context, store fluxgate.PresenceStore, req PresenceRequest, sub fluxgate.Subscription, s *Stream[[]fluxgate.PresenceEntry]) {
	env, userID := req.EnvironmentID, req.Entry.UserID
	log := h.opts.Logger.With("environment", env, "user", userID)
	defer close(s.c) // last: the reader then finds the entry gone
	defer h.active.Add(-1)
	defer sub.Close()
	defer func() {
		// Leave at once when the stream ends, even though ctx is done.
		leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := store.Leave(leaveCtx, env, userID); err != nil {
			log.Warn("presence leave failed; the entry will expire", "error", err)
		}
	}()

	send := func() bool {
		list, err := store.List(ctx, env)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("presence list failed", "error", err)
			}
			return ctx.Err() == nil // keep going; the next change or heartbeat retries
		}
		select {
		case <-ctx.Done():
			return false
		case s.c <- list:
			return true
		}
	}
	if !send() {
		return
	}

	ticker := time.NewTicker(req.Heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			err := store.Heartbeat(ctx, env, userID)
			if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
				// Expired while this replica could not reach the store.
				err = store.Join(ctx, env, req.Entry)
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("presence heartbeat failed", "error", err)
			}
		case _, ok := <-sub.C():
			if !ok {
				s.fail(ctx, h.opts.Logger, fluxgate.EnvironmentTopic(env), sub.Err())
				return
			}
			// Any change (or a resync) calls for a fresh list; changes
			// already queued are covered by the same one.
			for drained := false; !drained; {
				select {
				case _, ok := <-sub.C():
					drained = !ok
				default:
					drained = true
				}
			}
			if !send() {
				return
			}
		}
	}
}
