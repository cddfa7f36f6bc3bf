// Package storetest is the conformance suite of fluxgate.Store, run against
// every implementation (SQLite and PostgreSQL), plus helpers that open
// migrated test stores (also used by the server's end-to-end tests).
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
)

// Locker is implemented by stores that offer named exclusive locks
// (store.DB); Run checks its mutual exclusion when the store has it.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Run runs the conformance suite. open must return a new, empty, migrated
// store for each call; subtests run in parallel, each with its own store.
func Run(t *testing.T, open func(t *testing.T) fluxgate.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s fluxgate.Store)
	}{
		{"Users", testUsers},
		{"Teams", testTeams},
		{"Projects", testProjects},
		{"ProjectMembers", testProjectMembers},
		{"Environments", testEnvironments},
		{"Repositories", testRepositories},
		{"Resources", testResources},
		{"Deployments", testDeployments},
		{"Approvals", testApprovals},
		{"DeploymentStatusSwap", testDeploymentStatusSwap},
		{"DeploymentStatusSwapSerializes", testDeploymentStatusSwapSerializes},
		{"AuditEntries", testAuditEntries},
		{"FluxEvents", testFluxEvents},
		{"FluxEventsCommitOrder", testFluxEventsCommitOrder},
		{"InTx", testInTx},
		{"PaginationAscendingStableUnderInserts", testPaginationAscending},
		{"PaginationNewestFirstStableUnderInserts", testPaginationNewestFirst},
		{"PaginationConcurrentInserts", testPaginationConcurrent},
		{"PageValidation", testPageValidation},
		{"Lock", testLock},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// wantCode fails unless err carries the fluxgate error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := fluxgate.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (err %v), want %q", got, err, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantEqual compares two values deeply, printing both as JSON on mismatch.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// wantJSONEq compares two JSON documents semantically (PostgreSQL's JSONB
// reorders keys).
func wantJSONEq(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got invalid JSON %q: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want invalid JSON %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

// wantRecent fails unless ts is a UTC time between before and now.
func wantRecent(t *testing.T, what string, ts, before time.Time) {
	t.Helper()
	if ts.Location() != time.UTC {
		t.Fatalf("%s = %v, want UTC", what, ts)
	}
	if ts.Before(before.Truncate(time.Microsecond)) || ts.After(time.Now().Add(time.Second)) {
		t.Fatalf("%s = %v, want between %v and now", what, ts, before)
	}
}

// utc returns a fixed UTC time with microsecond precision (what both
// databases keep).
func utc(sec int) time.Time {
	return time.Date(2026, 3, 14, 15, 9, sec, 265358000, time.UTC)
}

func ptr[T any](v T) *T { return &v }

var uniqueCounter atomic.Int64

// unique returns a name unique in the test binary.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, uniqueCounter.Add(1)) }

func mustUser(t *testing.T, s fluxgate.Store, name string) *fluxgate.User {
	t.Helper()
	u := &fluxgate.User{Subject: unique("sub-" + name), Name: name, Email: name + "@example.com"}
	must(t, s.UpsertUser(context.Background(), u))
	return u
}

func mustProject(t *testing.T, s fluxgate.Store, slug string) *fluxgate.Project {
	t.Helper()
	p := &fluxgate.Project{Slug: slug, Name: "Project " + slug, Namespace: slug,
		DeploymentMode: fluxgate.DeploymentModeHybrid, GitOpsEnabled: true, CreatedBy: "tester"}
	must(t, s.CreateProject(context.Background(), p))
	return p
}

func mustEnvironment(t *testing.T, s fluxgate.Store, projectID, name string) *fluxgate.Environment {
	t.Helper()
	e := &fluxgate.Environment{ProjectID: projectID, Name: name, Type: fluxgate.EnvironmentDevelopment,
		GitOps: fluxgate.EnvironmentGitOps{Enabled: true, GitBranch: name, GitPath: "k8s/overlays/" + name}}
	must(t, s.CreateEnvironment(context.Background(), e))
	return e
}

func mustResource(t *testing.T, s fluxgate.Store, projectID string, envID *string, kind fluxgate.ResourceKind, name string) *fluxgate.GitOpsResource {
	t.Helper()
	r := &fluxgate.GitOpsResource{ProjectID: projectID, EnvironmentID: envID, Kind: kind, Name: name,
		Namespace: "ns-" + name, Spec: json.RawMessage(`{"interval":"1m"}`)}
	must(t, s.CreateResource(context.Background(), r))
	return r
}

func mustDeployment(t *testing.T, s fluxgate.Store, env *fluxgate.Environment, sha string, status fluxgate.DeploymentStatus) *fluxgate.Deployment {
	t.Helper()
	d := &fluxgate.Deployment{ProjectID: env.ProjectID, EnvironmentID: env.ID, CommitSHA: sha, Status: status,
		Method: fluxgate.MethodGitOpsUI, Version: "v1", Branch: env.Name}
	must(t, s.CreateDeployment(context.Background(), d))
	return d
}

func ids[T any](items []*T, id func(*T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}
