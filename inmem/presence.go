package inmem

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fluxgate/fluxgate"
)

// PresenceOptions configures a presence store. Zero values take defaults.
type PresenceOptions struct {
	TTL time.Duration    // fluxgate.DefaultPresenceTTL if 0
	Now func() time.Time // time.Now if nil
}

// Presence is an in-process fluxgate.PresenceStore. Changes are published
// on fluxgate.EnvironmentTopic through the given publisher.
type Presence struct {
	pub fluxgate.Publisher
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	envs map[string]map[string]*presenceItem // environment → user → entry
}

type presenceItem struct {
	entry   fluxgate.PresenceEntry
	expires time.Time
}

var _ fluxgate.PresenceStore = (*Presence)(nil)

// NewPresence returns an empty presence store publishing through pub.
func NewPresence(pub fluxgate.Publisher, opts PresenceOptions) *Presence {
	if opts.TTL <= 0 {
		opts.TTL = fluxgate.DefaultPresenceTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Presence{pub: pub, ttl: opts.TTL, now: opts.Now, envs: make(map[string]map[string]*presenceItem)}
}

// Join adds or replaces e on environmentID.
func (p *Presence) Join(ctx context.Context, environmentID string, e fluxgate.PresenceEntry) error {
	if e.UserID == "" {
		return fluxgate.InvalidField("userId", "presence entry needs a user")
	}
	now := p.now()
	if e.Since.IsZero() {
		e.Since = now
	}
	p.mu.Lock()
	expired := p.sweep(environmentID, now)
	users := p.envs[environmentID]
	if users == nil {
		users = make(map[string]*presenceItem)
		p.envs[environmentID] = users
	}
	users[e.UserID] = &presenceItem{entry: e, expires: now.Add(p.ttl)}
	p.mu.Unlock()

	return p.announce(ctx, environmentID, expired, fluxgate.PresenceChange{Kind: fluxgate.PresenceJoin, Entry: e})
}

// Heartbeat extends the entry's life by the TTL.
func (p *Presence) Heartbeat(ctx context.Context, environmentID, userID string) error {
	now := p.now()
	p.mu.Lock()
	expired := p.sweep(environmentID, now)
	item := p.envs[environmentID][userID]
	if item != nil {
		item.expires = now.Add(p.ttl)
	}
	p.mu.Unlock()

	if err := p.announce(ctx, environmentID, expired); err != nil {
		return err
	}
	if item == nil {
		return fluxgate.Errorf(fluxgate.ENOTFOUND, "presence of user %s on environment %s not found", userID, environmentID)
	}
	return nil
}

// UpdateField records which field the user edits ("" for none).
func (p *Presence) UpdateField(ctx context.Context, environmentID, userID, field string) error {
	now := p.now()
	p.mu.Lock()
	expired := p.sweep(environmentID, now)
	var change []fluxgate.PresenceChange
	item := p.envs[environmentID][userID]
	if item != nil {
		item.entry.Field = field
		change = append(change, fluxgate.PresenceChange{Kind: fluxgate.PresenceUpdate, Entry: item.entry})
	}
	p.mu.Unlock()

	if err := p.announce(ctx, environmentID, expired, change...); err != nil {
		return err
	}
	if item == nil {
		return fluxgate.Errorf(fluxgate.ENOTFOUND, "presence of user %s on environment %s not found", userID, environmentID)
	}
	return nil
}

// Leave removes the user's entry; leaving twice is not an error.
func (p *Presence) Leave(ctx context.Context, environmentID, userID string) error {
	p.mu.Lock()
	var change []fluxgate.PresenceChange
	if item := p.envs[environmentID][userID]; item != nil {
		p.delete(environmentID, userID)
		change = append(change, fluxgate.PresenceChange{Kind: fluxgate.PresenceLeave, Entry: item.entry})
	}
	p.mu.Unlock()
	return p.announce(ctx, environmentID, nil, change...)
}

// List returns the live entries, oldest first.
func (p *Presence) List(ctx context.Context, environmentID string) ([]fluxgate.PresenceEntry, error) {
	p.mu.Lock()
	expired := p.sweep(environmentID, p.now())
	entries := make([]fluxgate.PresenceEntry, 0, len(p.envs[environmentID]))
	for _, item := range p.envs[environmentID] {
		entries = append(entries, item.entry)
	}
	p.mu.Unlock()

	fluxgate.SortPresence(entries)
	return entries, p.announce(ctx, environmentID, expired)
}

// sweep removes the expired entries of environmentID and returns their
// leave announcements. The caller holds p.mu.
func (p *Presence) sweep(environmentID string, now time.Time) []fluxgate.PresenceChange {
	var changes []fluxgate.PresenceChange
	for userID, item := range p.envs[environmentID] {
		if !now.Before(item.expires) {
			p.delete(environmentID, userID)
			changes = append(changes, fluxgate.PresenceChange{Kind: fluxgate.PresenceLeave, Entry: item.entry})
		}
	}
	return changes
}

func (p *Presence) delete(environmentID, userID string) {
	users := p.envs[environmentID]
	delete(users, userID)
	if len(users) == 0 {
		delete(p.envs, environmentID)
	}
}

func (p *Presence) announce(ctx context.Context, environmentID string, expired []fluxgate.PresenceChange, changes ...fluxgate.PresenceChange) error {
	return publishPresence(ctx, p.pub, p.now(), environmentID, append(expired, changes...))
}

// publishPresence publishes each change as an EventPresence.
func publishPresence(ctx context.Context, pub fluxgate.Publisher, now time.Time, environmentID string, changes []fluxgate.PresenceChange) error {
	for _, c := range changes {
		c.EnvironmentID = environmentID
		ev, err := fluxgate.PresenceEvent(c, now)
		if err != nil {
			return err
		}
		if err := pub.Publish(ctx, fluxgate.EnvironmentTopic(environmentID), ev); err != nil {
			return fmt.Errorf("publish presence %s: %w", c.Kind, err)
		}
	}
	return nil
}
