package service

import (
	"encoding/json"
	"testing"

	"github.com/fluxgate/fluxgate"
)

// Which deployment counts as "deployed now" (the rollback's merge base):
// one whose commit Flux applied, whatever happened after the apply.
func TestRollbackBaseIsAnAppliedDeployment(t *testing.T) {
	steps := func(applied string) []fluxgate.DeploymentStep {
		s := pendingSteps()
		s[0].Status, s[1].Status, s[2].Status = "done", "done", applied
		return s
	}
	for _, c := range []struct {
		name string
		d    fluxgate.Deployment
		want bool
	}{
		{"succeeded", fluxgate.Deployment{Status: fluxgate.DeploymentSucceeded, Steps: steps("done")}, true},
		{"health checks failed after the apply", fluxgate.Deployment{Status: fluxgate.DeploymentFailed, Steps: steps("done")}, true},
		{"superseded after the apply", fluxgate.Deployment{Status: fluxgate.DeploymentSuperseded, Steps: steps("done")}, true},
		{"in progress, applied", fluxgate.Deployment{Status: fluxgate.DeploymentInProgress, Steps: steps("done")}, true},
		{"build failed", fluxgate.Deployment{Status: fluxgate.DeploymentFailed, Steps: steps("failed")}, false},
		{"superseded before the apply", fluxgate.Deployment{Status: fluxgate.DeploymentSuperseded, Steps: steps("pending")}, false},
		{"pending", fluxgate.Deployment{Status: fluxgate.DeploymentPending, Steps: pendingSteps()}, false},
	} {
		if got := applied(&c.d); got != c.want {
			t.Errorf("%s: applied = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseRollbackChange(t *testing.T) {
	rc := RollbackChange{Kind: RollbackKind, TargetDeploymentID: "d1", TargetCommitSHA: "abc", BaseRevision: "def", Branch: "main", Path: "k8s"}
	b, err := json.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ParseRollbackChange(b); !ok || got.TargetDeploymentID != "d1" || got.BaseRevision != "def" || got.Path != "k8s" {
		t.Fatalf("round trip of %s = %+v %v", b, got, ok)
	}
	for _, raw := range []string{`{}`, `{"image":"acme/web:2"}`, `{"kind":"rollback"}`, `not json`} {
		if _, ok := ParseRollbackChange(json.RawMessage(raw)); ok {
			t.Errorf("%s parsed as a rollback", raw)
		}
	}
}
