package fluxgate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// FluxEvent is something Flux reported about one of its objects, from the
// watcher or from notification-controller's webhook. Seq increases
// monotonically and is the cursor of fluxEvents subscriptions.
type FluxEvent struct {
	Seq        int64           `json:"seq" db:"seq"`
	ID         string          `json:"id" db:"id"`
	ProjectID  string          `json:"projectId" db:"project_id"`
	ResourceID *string         `json:"resourceId,omitempty" db:"resource_id"`
	Kind       string          `json:"kind" db:"kind"`
	Name       string          `json:"name" db:"name"`
	Namespace  string          `json:"namespace" db:"namespace"`
	Reason     string          `json:"reason" db:"reason"`
	Message    string          `json:"message" db:"message"`
	Type       string          `json:"type" db:"type"`         // Normal or Warning
	Severity   string          `json:"severity" db:"severity"` // info or error
	Revision   string          `json:"revision" db:"revision"`
	Metadata   json.RawMessage `json:"metadata" db:"metadata"`
	Source     string          `json:"source" db:"source"`      // watcher or webhook
	DedupKey   string          `json:"dedupKey" db:"dedup_key"` // same event delivered twice is stored once
	Timestamp  time.Time       `json:"timestamp" db:"timestamp"`
	CreatedAt  time.Time       `json:"createdAt" db:"created_at"`
}

// FluxEventFilter narrows a Flux event listing (newest first unless
// AfterSeq is set, which lists oldest first from that sequence on).
type FluxEventFilter struct {
	ProjectID string
	Kind      string
	Severity  string
	AfterSeq  int64 // >0: events with Seq > AfterSeq, ascending (replay)
	Page      Page
}

// FluxEventDedupKey identifies one occurrence of a Flux event whichever way
// it arrived (the watcher's core/v1 Event or notification-controller's
// webhook): a hash of the involved object, reason, revision, message and
// the time to the second. The same event delivered twice is stored once.
func FluxEventDedupKey(e *FluxEvent) string {
	h := sha256.New()
	for _, s := range []string{e.Kind, e.Namespace, e.Name, e.Reason, e.Revision, e.Message,
		e.Timestamp.UTC().Truncate(time.Second).Format(time.RFC3339)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
