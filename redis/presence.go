package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fluxgate/fluxgate"
)

// PresenceOptions tunes a Presence store. Zero values take defaults.
type PresenceOptions struct {
	Prefix string           // key prefix (DefaultPrefix if empty)
	TTL    time.Duration    // entry life without heartbeat (fluxgate.DefaultPresenceTTL if 0)
	Now    func() time.Time // time.Now if nil
}

// Presence is a fluxgate.PresenceStore shared by every replica. Each
// environment has a hash (user id → entry JSON) and a sorted set (user id →
// expiry in Unix milliseconds); both keys also expire in Redis when the
// environment is abandoned.
type Presence struct {
	client *goredis.Client
	pub    fluxgate.Publisher
	opts   PresenceOptions
}

var _ fluxgate.PresenceStore = (*Presence)(nil)

// NewPresence returns a presence store on client that announces changes
// through pub.
func NewPresence(client *goredis.Client, pub fluxgate.Publisher, opts PresenceOptions) *Presence {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL <= 0 {
		opts.TTL = fluxgate.DefaultPresenceTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Presence{client: client, pub: pub, opts: opts}
}

func (p *Presence) keys(environmentID string) []string {
	base := p.opts.Prefix + "presence:" + environmentID
	return []string{base + ":expiry", base + ":entries"}
}

// keyTTL is how long Redis keeps an environment's keys after its last
// change: long after every entry in them expired.
func (p *Presence) keyTTL() time.Duration { return max(10*p.opts.TTL, time.Minute) }

func ms(t time.Time) int64 { return t.UnixMilli() }

// sweepScript removes the entries whose expiry passed and returns them as
// id, entry, id, entry… Being atomic, exactly one caller announces each.
var sweepScript = goredis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if v then
    table.insert(out, id)
    table.insert(out, v)
  end
end
return out`)

// joinScript stores entry ARGV[2] of user ARGV[1] expiring at ARGV[3].
var joinScript = goredis.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`)

// heartbeatScript moves user ARGV[1]'s expiry to ARGV[2] if present.
var heartbeatScript = goredis.NewScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`)

// replaceScript replaces user ARGV[1]'s entry by ARGV[2] if present.
var replaceScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`)

// leaveScript removes user ARGV[1] and returns its entry, if any.
var leaveScript = goredis.NewScript(`
local v = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return v`)

// Join adds or replaces e on environmentID.
func (p *Presence) Join(ctx context.Context, environmentID string, e fluxgate.PresenceEntry) error {
	if e.UserID == "" {
		return fluxgate.InvalidField("userId", "presence entry needs a user")
	}
	now := p.opts.Now()
	if e.Since.IsZero() {
		e.Since = now
	}
	if err := p.sweep(ctx, environmentID, now); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode presence entry: %w", err)
	}
	keys := p.keys(environmentID)
	if err := joinScript.Run(ctx, p.client, keys, e.UserID, data, ms(now.Add(p.opts.TTL)), p.keyTTL().Milliseconds()).Err(); err != nil {
		return fmt.Errorf("join presence: %w", err)
	}
	return p.announce(ctx, environmentID, now, fluxgate.PresenceChange{Kind: fluxgate.PresenceJoin, Entry: e})
}

// Heartbeat extends the entry's life by the TTL.
func (p *Presence) Heartbeat(ctx context.Context, environmentID, userID string) error {
	now := p.opts.Now()
	if err := p.sweep(ctx, environmentID, now); err != nil {
		return err
	}
	ok, err := heartbeatScript.Run(ctx, p.client, p.keys(environmentID), userID, ms(now.Add(p.opts.TTL)), p.keyTTL().Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("presence heartbeat: %w", err)
	}
	if ok == 0 {
		return notFound(environmentID, userID)
	}
	return nil
}

// UpdateField records which field the user edits ("" for none).
func (p *Presence) UpdateField(ctx context.Context, environmentID, userID, field string) error {
	now := p.opts.Now()
	if err := p.sweep(ctx, environmentID, now); err != nil {
		return err
	}
	keys := p.keys(environmentID)
	data, err := p.client.HGet(ctx, keys[1], userID).Bytes()
	if errors.Is(err, goredis.Nil) {
		return notFound(environmentID, userID)
	} else if err != nil {
		return fmt.Errorf("read presence: %w", err)
	}
	var e fluxgate.PresenceEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("decode presence entry: %w", err)
	}
	e.Field = field
	if data, err = json.Marshal(e); err != nil {
		return fmt.Errorf("encode presence entry: %w", err)
	}
	ok, err := replaceScript.Run(ctx, p.client, keys, userID, data).Int()
	if err != nil {
		return fmt.Errorf("update presence: %w", err)
	}
	if ok == 0 {
		return notFound(environmentID, userID)
	}
	return p.announce(ctx, environmentID, now, fluxgate.PresenceChange{Kind: fluxgate.PresenceUpdate, Entry: e})
}

// Leave removes the user's entry; leaving twice is not an error.
func (p *Presence) Leave(ctx context.Context, environmentID, userID string) error {
	data, err := leaveScript.Run(ctx, p.client, p.keys(environmentID), userID).Text()
	if errors.Is(err, goredis.Nil) {
		return nil
	} else if err != nil {
		return fmt.Errorf("leave presence: %w", err)
	}
	var e fluxgate.PresenceEntry
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return fmt.Errorf("decode presence entry: %w", err)
	}
	return p.announce(ctx, environmentID, p.opts.Now(), fluxgate.PresenceChange{Kind: fluxgate.PresenceLeave, Entry: e})
}

// List returns the live entries, oldest first.
func (p *Presence) List(ctx context.Context, environmentID string) ([]fluxgate.PresenceEntry, error) {
	if err := p.sweep(ctx, environmentID, p.opts.Now()); err != nil {
		return nil, err
	}
	values, err := p.client.HVals(ctx, p.keys(environmentID)[1]).Result()
	if err != nil {
		return nil, fmt.Errorf("list presence: %w", err)
	}
	entries := make([]fluxgate.PresenceEntry, 0, len(values))
	for _, v := range values {
		var e fluxgate.PresenceEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, fmt.Errorf("decode presence entry: %w", err)
		}
		entries = append(entries, e)
	}
	fluxgate.SortPresence(entries)
	return entries, nil
}

// sweep removes expired entries and announces their leave.
func (p *Presence) sweep(ctx context.Context, environmentID string, now time.Time) error {
	removed, err := sweepScript.Run(ctx, p.client, p.keys(environmentID), ms(now)).StringSlice()
	if err != nil {
		return fmt.Errorf("expire presence: %w", err)
	}
	var changes []fluxgate.PresenceChange
	for i := 1; i < len(removed); i += 2 {
		var e fluxgate.PresenceEntry
		if err := json.Unmarshal([]byte(removed[i]), &e); err != nil {
			return fmt.Errorf("decode presence entry: %w", err)
		}
		changes = append(changes, fluxgate.PresenceChange{Kind: fluxgate.PresenceLeave, Entry: e})
	}
	return p.announce(ctx, environmentID, now, changes...)
}

func (p *Presence) announce(ctx context.Context, environmentID string, now time.Time, changes ...fluxgate.PresenceChange) error {
	for _, c := range changes {
		c.EnvironmentID = environmentID
		ev, err := fluxgate.PresenceEvent(c, now)
		if err != nil {
			return err
		}
		if err := p.pub.Publish(ctx, fluxgate.EnvironmentTopic(environmentID), ev); err != nil {
			return fmt.Errorf("announce presence %s: %w", c.Kind, err)
		}
	}
	return nil
}

func notFound(environmentID, userID string) error {
	return fluxgate.Errorf(fluxgate.ENOTFOUND, "presence of user %s on environment %s not found", userID, environmentID)
}
