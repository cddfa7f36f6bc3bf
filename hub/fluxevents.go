package hub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fluxgate/fluxgate"
)

// FluxEventLister is the part of fluxgate.Store that replays Flux events.
type FluxEventLister interface {
	ListFluxEvents(ctx context.Context, f fluxgate.FluxEventFilter) ([]*fluxgate.FluxEvent, fluxgate.PageInfo, error)
}

// FluxEventReplay returns the ReplayFunc of a project's Flux events: pages
// of fluxgate.MaxPageSize, oldest first, as the events the service
// publishes (fluxgate.EventFluxEvent with Seq).
func FluxEventReplay(store FluxEventLister, projectID string) ReplayFunc {
	return func(ctx context.Context, afterSeq int64) ([]fluxgate.Event, error) {
		list, _, err := store.ListFluxEvents(ctx, fluxgate.FluxEventFilter{
			ProjectID: projectID,
			AfterSeq:  afterSeq,
			Page:      fluxgate.Page{First: fluxgate.MaxPageSize},
		})
		if err != nil {
			return nil, err
		}
		events := make([]fluxgate.Event, len(list))
		for i, fe := range list {
			if events[i], err = FluxEventMessage(fe); err != nil {
				return nil, err
			}
		}
		return events, nil
	}
}

// FluxEventMessage returns the bus event that announces fe on its
// project's topic.
func FluxEventMessage(fe *fluxgate.FluxEvent) (fluxgate.Event, error) {
	ev, err := fluxgate.NewEvent(fluxgate.EventFluxEvent, fe.ProjectID, fe, fe.CreatedAt)
	if err != nil {
		return fluxgate.Event{}, fmt.Errorf("flux event %d: %w", fe.Seq, err)
	}
	ev.Seq = fe.Seq
	return ev, nil
}

// DecodeFluxEvent is a convert function for Subscribe: it passes the Flux
// events of a stream and skips everything else.
func DecodeFluxEvent(ev fluxgate.Event) (*fluxgate.FluxEvent, bool) {
	if ev.Type != fluxgate.EventFluxEvent {
		return nil, false
	}
	var fe fluxgate.FluxEvent
	if err := json.Unmarshal(ev.Payload, &fe); err != nil {
		return nil, false
	}
	return &fe, true
}
