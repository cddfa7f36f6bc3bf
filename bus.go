package fluxgate

import (
	"context"
	"encoding/json"
	"time"
)

// Event types published on the bus.
const (
	EventResourceStatus     = "resource.status"     // Payload: GitOpsResource
	EventFluxEvent          = "flux.event"          // Payload: FluxEvent (Seq set)
	EventDeploymentProgress = "deployment.progress" // Payload: Deployment
	EventPresence           = "presence"            // Payload: PresenceChange
)

// Event is a domain event carried by the EventBus to every replica.
type Event struct {
	Type      string `json:"type"`
	ProjectID string `json:"projectId"`
	// Seq is the FluxEvent sequence for EventFluxEvent, used to resume.
	Seq     int64           `json:"seq,omitempty"`
	Payload json.RawMessage `json:"payload"`
	At      time.Time       `json:"at"`
}

// Topic names. Subscribers of a topic receive only events published on it.
func ProjectTopic(projectID string) string       { return "project:" + projectID }
func DeploymentTopic(deploymentID string) string { return "deployment:" + deploymentID }
func EnvironmentTopic(environmentID string) string {
	return "environment:" + environmentID
}

// EventBus delivers events to subscribers in every replica. Publish never
// blocks on a slow subscriber: a subscriber whose buffer is full is closed
// and its Err says why.
type EventBus interface {
	Publish(ctx context.Context, topic string, ev Event) error
	Subscribe(ctx context.Context, topic string) (Subscription, error)
	Close() error
}

// Subscription is one subscriber's stream. C is closed when the
// subscription ends (Close, context done, cut off as too slow, bus closed);
// Err then tells why (nil after Close).
type Subscription interface {
	C() <-chan Event
	Err() error
	Close()
}

// Publisher is the part of EventBus that producers need.
type Publisher interface {
	Publish(ctx context.Context, topic string, ev Event) error
}
