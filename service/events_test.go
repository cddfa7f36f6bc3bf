package service_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/inmem"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// fixtureEvent reads a payload notification-controller really sent
// (copied from the shared fixtures into testdata/).
func fixtureEvent(t *testing.T, name string) *fluxgate.FluxEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	var p struct {
		InvolvedObject            struct{ Kind, Namespace, Name string }
		Severity, Message, Reason string
		Timestamp                 time.Time
		Metadata                  map[string]string
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &fluxgate.FluxEvent{
		Kind: p.InvolvedObject.Kind, Namespace: p.InvolvedObject.Namespace, Name: p.InvolvedObject.Name,
		Severity: p.Severity, Message: p.Message, Reason: p.Reason, Timestamp: p.Timestamp,
		Revision: p.Metadata["revision"], Source: "webhook",
	}
}

func TestRecordFluxEventMapsStoresDedupsAndPublishes(t *testing.T) {
	db := storetest.MustOpen(t)
	bus := inmem.NewBus(16)
	defer bus.Close()
	svc := service.New(db, service.WithPublisher(bus))
	ctx := context.Background()
	owner := must(svc.SignIn(ctx, service.Identity{Subject: "owner"}))
	octx := fluxgate.NewContextWithUser(ctx, owner)
	p := must(svc.CreateProject(octx, service.CreateProjectInput{Slug: "demo", Name: "Demo"}))
	res := &fluxgate.GitOpsResource{ProjectID: p.ID, Kind: fluxgate.KindGitRepository, Name: "demo", Namespace: "flux-system", Spec: json.RawMessage(`{}`)}
	if err := db.CreateResource(ctx, res); err != nil {
		t.Fatal(err)
	}
	sub := must(bus.Subscribe(ctx, fluxgate.ProjectTopic(p.ID)))
	defer sub.Close()

	ev := fixtureEvent(t, "gitrepository-newartifact.json")
	if err := svc.HandleFluxEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// The same delivery again is stored and published once.
	if err := svc.HandleFluxEvent(ctx, fixtureEvent(t, "gitrepository-newartifact.json")); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	timeout := time.After(2 * time.Second)
	for len(got) < 2 {
		select {
		case e := <-sub.C():
			got[e.Type]++
			if e.Type == fluxgate.EventFluxEvent && e.Seq == 0 {
				t.Error("flux event published without its sequence")
			}
		case <-timeout:
			t.Fatalf("published %v, want a flux event and a status change", got)
		}
	}
	select {
	case e := <-sub.C():
		t.Fatalf("duplicate delivery published again: %s", e.Type)
	case <-time.After(100 * time.Millisecond):
	}
	events, _, err := db.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID})
	if err != nil || len(events) != 1 {
		t.Fatalf("stored %d events (%v), want 1", len(events), err)
	}
	if events[0].Severity != "info" || events[0].Type != "Normal" || events[0].Revision != "main@sha1:e47f4bc4a77fa7873fceb03fa39601fc4361dc9f" {
		t.Fatalf("stored event = %+v", events[0])
	}
	r := must(db.GetResource(ctx, res.ID))
	if r.Status != fluxgate.ResourceReady || r.LastAppliedRevision != events[0].Revision {
		t.Fatalf("resource after NewArtifact = %s %q", r.Status, r.LastAppliedRevision)
	}

	// An object no project manages is NOT_FOUND and stores nothing.
	stray := fixtureEvent(t, "kustomization-progressing.json")
	stray.Name = "not-managed"
	if err := svc.HandleFluxEvent(ctx, stray); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("unmanaged object: %v", err)
	}
}
