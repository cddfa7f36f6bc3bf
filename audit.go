package fluxgate

import (
	"encoding/json"
	"time"
)

// AuditEntry records one change: who did what to which target.
type AuditEntry struct {
	ID         string          `json:"id" db:"id"`
	ProjectID  *string         `json:"projectId,omitempty" db:"project_id"`
	ActorID    string          `json:"actorId" db:"actor_id"`
	Action     string          `json:"action" db:"action"`
	TargetType string          `json:"targetType" db:"target_type"`
	TargetID   string          `json:"targetId" db:"target_id"`
	Metadata   json.RawMessage `json:"metadata" db:"metadata"`
	CreatedAt  time.Time       `json:"createdAt" db:"created_at"`
}

// AuditFilter narrows an audit log listing (always newest first).
type AuditFilter struct {
	ProjectID string
	Page      Page
}
