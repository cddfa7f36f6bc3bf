package fluxgate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PresenceMode says whether someone looks at an environment's config or
// edits it.
type PresenceMode string

const (
	PresenceViewing PresenceMode = "VIEWING"
	PresenceEditing PresenceMode = "EDITING"
)

// Valid reports whether m is a known mode.
func (m PresenceMode) Valid() bool { return m == PresenceViewing || m == PresenceEditing }

// DefaultPresenceTTL is how long a presence entry lives without a heartbeat.
const DefaultPresenceTTL = 30 * time.Second

// PresenceEntry is one person present on an environment. There is at most
// one entry per user and environment.
type PresenceEntry struct {
	UserID    string       `json:"userId"`
	Name      string       `json:"name"`
	AvatarURL string       `json:"avatarUrl"`
	Mode      PresenceMode `json:"mode"`
	Field     string       `json:"field"` // config field being edited, "" if none
	Since     time.Time    `json:"since"`
}

// Presence change kinds.
const (
	PresenceJoin   = "join"
	PresenceUpdate = "update"
	PresenceLeave  = "leave" // also announced when an entry expired
)

// PresenceChange is the payload of an EventPresence, published on
// EnvironmentTopic(EnvironmentID) by the replica that made the change.
type PresenceChange struct {
	EnvironmentID string        `json:"environmentId"`
	Kind          string        `json:"kind"`
	Entry         PresenceEntry `json:"entry"`
}

// PresenceEvent returns the EventPresence that announces c.
func PresenceEvent(c PresenceChange, at time.Time) (Event, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return Event{}, fmt.Errorf("encode presence change: %w", err)
	}
	return Event{Type: EventPresence, Payload: payload, At: at}, nil
}

// SortPresence orders entries as PresenceStore.List returns them: oldest
// first, then by user id.
func SortPresence(entries []PresenceEntry) {
	slices.SortFunc(entries, func(a, b PresenceEntry) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
}

// PresenceStore keeps who is present on which environment, shared by every
// replica. Entries expire when not refreshed by Heartbeat within the TTL;
// expired entries (a replica died) are removed lazily by List and Heartbeat
// of any replica, which announce the leave. Every change is published as an
// EventPresence.
//
// Heartbeat and UpdateField return ENOTFOUND when the entry does not exist
// (left or expired): the caller should Join again.
type PresenceStore interface {
	// Join adds or replaces e on environmentID; Since is set when zero.
	Join(ctx context.Context, environmentID string, e PresenceEntry) error
	Heartbeat(ctx context.Context, environmentID, userID string) error
	UpdateField(ctx context.Context, environmentID, userID, field string) error
	Leave(ctx context.Context, environmentID, userID string) error
	// List returns the live entries of environmentID, oldest first.
	List(ctx context.Context, environmentID string) ([]PresenceEntry, error)
}
