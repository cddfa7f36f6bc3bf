package fluxgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event types published on the bus.
const (
	EventResourceStatus     = "resource.status"     // Payload: GitOpsResource
	EventFluxEvent          = "flux.event"          // Payload: FluxEvent (Seq set)
	EventDeploymentProgress = "deployment.progress" // Payload: Deployment
	EventPresence           = "presence"            // Payload: PresenceChange

	// EventResync is never published: a bus delivers it to the subscribers
	// of a topic after it lost contact with its backend (a Redis connection
	// dropped and was re-established). Events of the topic may have been
	// missed in between; subscribers that hold a cursor backfill from the
	// database. It carries no payload and no Seq.
	EventResync = "bus.resync"
)

// Event is a domain event carried by the EventBus to every replica.
// Subscribers share the Payload bytes: they must not modify them.
type Event struct {
	Type      string `json:"type"`
	ProjectID string `json:"projectId"`
	// Seq is the FluxEvent sequence for EventFluxEvent, used to resume.
	// Events without a sequence (status, progress, presence) leave it 0.
	Seq     int64           `json:"seq,omitempty"`
	Payload json.RawMessage `json:"payload"`
	At      time.Time       `json:"at"`
}

// NewEvent returns an event of type typ whose payload is v encoded as
// JSON. Set Seq on the result for an EventFluxEvent.
func NewEvent(typ, projectID string, v any, at time.Time) (Event, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return Event{Type: typ, ProjectID: projectID, Payload: payload, At: at}, nil
}

// Topic names. Subscribers of a topic receive only events published on it.
func ProjectTopic(projectID string) string       { return "project:" + projectID }
func DeploymentTopic(deploymentID string) string { return "deployment:" + deploymentID }
func EnvironmentTopic(environmentID string) string {
	return "environment:" + environmentID
}

// Errors a Subscription's Err reports.
var (
	// ErrSubscriberTooSlow ends a subscription whose buffer was full when
	// an event arrived: the subscriber fell behind and was cut off so that
	// the others keep flowing. It may resubscribe and backfill.
	ErrSubscriberTooSlow = errors.New("subscriber too slow: event buffer full")
	// ErrBusClosed ends the subscriptions of a bus that was closed.
	ErrBusClosed = errors.New("event bus closed")
)

// EventBus delivers events to subscribers in every replica. Publish never
// blocks on a slow subscriber: a subscriber whose buffer is full is closed
// and its Err is ErrSubscriberTooSlow.
//
// Events published on a topic by one goroutine reach each subscriber in
// publication order. A bus that may lose events (its backend connection
// dropped) delivers EventResync to the affected subscribers once it is
// connected again.
//
// Publish returns an error when the event could not be handed to the
// backend (Redis down); Subscribe succeeds even then and the subscription
// starts with an EventResync once the backend is back.
type EventBus interface {
	Publish(ctx context.Context, topic string, ev Event) error
	Subscribe(ctx context.Context, topic string) (Subscription, error)
	Close() error
}

// Subscription is one subscriber's stream. C is closed when the
// subscription ends (Close, context done, cut off as too slow, bus closed);
// Err then tells why (nil after Close or when the context is done).
type Subscription interface {
	C() <-chan Event
	Err() error
	Close()
}

// Publisher is the part of EventBus that producers need.
type Publisher interface {
	Publish(ctx context.Context, topic string, ev Event) error
}
