package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
)

// lister pages like the store: AfterSeq > 0 lists ascending.
type lister struct {
	events []*fluxgate.FluxEvent
	pages  int
}

func (l *lister) ListFluxEvents(_ context.Context, f fluxgate.FluxEventFilter) ([]*fluxgate.FluxEvent, fluxgate.PageInfo, error) {
	l.pages++
	var out []*fluxgate.FluxEvent
	for _, e := range l.events {
		if e.ProjectID == f.ProjectID && e.Seq > f.AfterSeq && len(out) < f.Page.Limit() {
			out = append(out, e)
		}
	}
	return out, fluxgate.PageInfo{}, nil
}

func TestFluxEventReplayThroughTheHub(t *testing.T) {
	h, bus := newHub(t, 0)
	var db lister
	for seq := int64(1); seq <= 450; seq++ {
		project := "p1"
		if seq%10 == 0 {
			project = "p2" // another project's events never show up
		}
		db.events = append(db.events, &fluxgate.FluxEvent{Seq: seq, ProjectID: project, Kind: "Kustomization", Reason: "Progressing", CreatedAt: time.Unix(seq, 0)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := hub.Subscribe(ctx, h, hub.Request{Topic: topic, After: 5, Replay: hub.FluxEventReplay(&db, "p1")}, hub.DecodeFluxEvent)
	if err != nil {
		t.Fatal(err)
	}
	live := &fluxgate.FluxEvent{Seq: 451, ProjectID: "p1", Kind: "GitRepository", Reason: "NewArtifact"}
	ev, err := hub.FluxEventMessage(live)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, topic, ev); err != nil {
		t.Fatal(err)
	}
	for seq := int64(6); seq <= 451; seq++ {
		if seq%10 == 0 {
			continue
		}
		select {
		case fe := <-s.C():
			if fe.Seq != seq || fe.ProjectID != "p1" {
				t.Fatalf("got seq %d of %s, want %d", fe.Seq, fe.ProjectID, seq)
			}
			if seq == 451 && fe.Kind != "GitRepository" {
				t.Fatalf("live event decoded as %+v", fe)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("seq %d not received", seq)
		}
	}
	if db.pages < 3 {
		t.Fatalf("replayed in %d pages; want pages of %d", db.pages, fluxgate.MaxPageSize)
	}
}
