package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/server"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/store/storetest"
)

var testSecret = []byte("test-secret-0123456789abcdef0123456789")

// backends runs f on SQLite and, when DATABASE_URL is set, PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, open func(testing.TB) *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.MustOpen) })
	t.Run("postgres", func(t *testing.T) { f(t, storetest.MustOpenPostgres) })
}

// stack is a whole fluxgate server on 127.0.0.1:0.
type stack struct {
	t   testing.TB
	url string
}

func startStack(t testing.TB, db *store.DB, opts ...service.Option) *stack {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(db, append([]service.Option{service.WithLogger(logger)}, opts...)...)
	srv := server.New(server.Config{
		Service: svc,
		Auth:    auth.New(testSecret, "", svc),
		Logger:  logger,
		Ready:   []server.Check{{Name: "database", Check: db.Ping}},
	})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &stack{t: t, url: "http://" + srv.Addr()}
}

func (s *stack) token(subject, name string) string {
	s.t.Helper()
	tok, err := auth.Issue(testSecret, service.Identity{Subject: subject, Name: name, Email: subject + "@example.com"}, time.Hour, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// gqlError is one error of a GraphQL response.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	raw    map[string]json.RawMessage
}

func (r *gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r *gqlResponse) field() string {
	if len(r.Errors) == 0 {
		return ""
	}
	f, _ := r.Errors[0].Extensions["field"].(string)
	return f
}

// do posts a GraphQL request over real HTTP.
func (s *stack) do(token, query string, vars map[string]any) *gqlResponse {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(req)
}

func (s *stack) send(req *http.Request) *gqlResponse {
	s.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := &gqlResponse{Status: res.StatusCode}
	if err := json.Unmarshal(b, &out.raw); err != nil {
		s.t.Fatalf("response is not JSON (%d): %s", res.StatusCode, b)
	}
	_ = json.Unmarshal(b, out)
	return out
}

// must runs a request that must succeed and decodes data into v.
// auditEntry is one entry of a project's audit log.
type auditEntry struct{ Action, TargetID string }

// auditEntries returns the project's 50 newest audit entries.
func (s *stack) auditEntries(token, projectID string) []auditEntry {
	s.t.Helper()
	var r struct {
		Project struct {
			AuditLog struct {
				Edges []struct{ Node auditEntry }
			}
		}
	}
	s.must(token, `query($id: ID) { project(id: $id) { auditLog(first: 50) { edges { node { action targetId } } } } }`, map[string]any{"id": projectID}, &r)
	out := make([]auditEntry, len(r.Project.AuditLog.Edges))
	for i, e := range r.Project.AuditLog.Edges {
		out[i] = e.Node
	}
	return out
}

func (s *stack) must(token, query string, vars map[string]any, v any) {
	s.t.Helper()
	r := s.do(token, query, vars)
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		s.t.Fatalf("unexpected errors (%d): %+v", r.Status, r.Errors)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *stack) viewerID(token string) string {
	var d struct{ Viewer struct{ ID string } }
	s.must(token, `{ viewer { id } }`, nil, &d)
	return d.Viewer.ID
}

const createProject = `mutation($in: CreateProjectInput!) { createProject(input: $in) { project { id slug namespace viewerRole } } }`

func (s *stack) createProject(token, slug string) string {
	var d struct {
		CreateProject struct{ Project struct{ ID string } }
	}
	s.must(token, createProject, map[string]any{"in": map[string]any{"slug": slug, "name": "Project " + slug}}, &d)
	return d.CreateProject.Project.ID
}

func TestEndToEndProjectLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		s := startStack(t, open(t))
		alice, bob := s.token("alice", "Alice"), s.token("bob", "Bob")
		bobID := s.viewerID(bob)

		var cp struct {
			CreateProject struct {
				Project struct{ ID, Slug, Namespace, ViewerRole string }
			}
		}
		s.must(alice, createProject, map[string]any{"in": map[string]any{"slug": "shop", "name": "Shop", "description": "web shop"}}, &cp)
		p := cp.CreateProject.Project
		if p.Slug != "shop" || p.Namespace != "fg-shop" || p.ViewerRole != "OWNER" {
			t.Fatalf("created project = %+v", p)
		}

		var ce struct {
			CreateEnvironment struct {
				Environment struct {
					ID, Name, Type string
					Gitops         struct{ ProgressTimeout string }
				}
			}
		}
		s.must(alice, `mutation($in: CreateEnvironmentInput!) { createEnvironment(input: $in) { environment { id name type gitops { progressTimeout } } } }`,
			map[string]any{"in": map[string]any{"projectId": p.ID, "name": "production", "type": "PRODUCTION",
				"gitops":       map[string]any{"enabled": true, "autoSync": false, "gitBranch": "main", "gitPath": "k8s/overlays/production", "syncInterval": "5m", "progressTimeout": "20m"},
				"approval":     map[string]any{"required": true, "minApprovals": 1},
				"healthChecks": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}}, &ce)
		if ce.CreateEnvironment.Environment.Type != "PRODUCTION" || ce.CreateEnvironment.Environment.Gitops.ProgressTimeout != "20m" {
			t.Fatalf("environment = %+v", ce.CreateEnvironment.Environment)
		}

		var cr struct {
			ConnectRepository struct {
				Repository struct {
					ID, Provider, FullName string
					Gitops                 struct{ FluxResourceName, FluxNamespace string }
				}
			}
		}
		s.must(alice, `mutation($in: ConnectRepositoryInput!) { connectRepository(input: $in) { repository { id provider fullName gitops { fluxResourceName fluxNamespace } } } }`,
			map[string]any{"in": map[string]any{"projectId": p.ID, "cloneUrl": "https://github.com/acme/shop-config.git"}}, &cr)
		r := cr.ConnectRepository.Repository
		if r.Provider != "github" || r.FullName != "acme/shop-config" || r.Gitops.FluxResourceName != "shop-config" || r.Gitops.FluxNamespace != "fg-shop" {
			t.Fatalf("repository = %+v", r)
		}

		s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role user { name } } } }`,
			map[string]any{"in": map[string]any{"projectId": p.ID, "userId": bobID, "role": "VIEWER"}}, nil)

		var q struct {
			Project struct {
				Environments []struct{ Name string }
				Repositories []struct{ FullName string }
				Members      []struct {
					Role string
					User struct{ Name string }
				}
				AuditLog struct {
					Edges []struct {
						Node struct {
							Action string
							Actor  struct{ Name string }
						}
					}
				}
			}
		}
		s.must(bob, `query($slug: String) { project(slug: $slug) { environments { name } repositories { fullName } members { role user { name } } auditLog(first: 10) { edges { node { action actor { name } } } } } }`,
			map[string]any{"slug": "shop"}, &q)
		if len(q.Project.Environments) != 1 || len(q.Project.Repositories) != 1 || len(q.Project.Members) != 2 {
			t.Fatalf("project as seen by bob = %+v", q.Project)
		}
		var actions []string
		for _, e := range q.Project.AuditLog.Edges {
			actions = append(actions, e.Node.Action)
			if e.Node.Actor.Name != "Alice" {
				t.Errorf("audit actor = %q, want Alice", e.Node.Actor.Name)
			}
		}
		want := "project.member.added,repository.connected,environment.created,project.created"
		if strings.Join(actions, ",") != want {
			t.Fatalf("audit log = %v, want %s (newest first)", actions, want)
		}

		// A viewer may read but never mutate.
		res := s.do(bob, `mutation($in: UpdateProjectInput!) { updateProject(input: $in) { project { name } } }`,
			map[string]any{"in": map[string]any{"id": p.ID, "name": "Bob's shop"}})
		if res.code() != "FORBIDDEN" {
			t.Fatalf("viewer update: code %q, errors %+v", res.code(), res.Errors)
		}
		res = s.do(bob, `mutation($in: DeleteEnvironmentInput!) { deleteEnvironment(input: $in) { deletedId } }`,
			map[string]any{"in": map[string]any{"id": ce.CreateEnvironment.Environment.ID}})
		if res.code() != "FORBIDDEN" {
			t.Fatalf("viewer delete environment: code %q", res.code())
		}

		// An outsider does not even see the project.
		carol := s.token("carol", "Carol")
		res = s.do(carol, `query($id: ID) { project(id: $id) { name } }`, map[string]any{"id": p.ID})
		if res.code() != "NOT_FOUND" {
			t.Fatalf("outsider read: code %q", res.code())
		}

		// The last owner cannot leave.
		aliceID := s.viewerID(alice)
		res = s.do(alice, `mutation($in: RemoveProjectMemberInput!) { removeProjectMember(input: $in) { removedUserId } }`,
			map[string]any{"in": map[string]any{"projectId": p.ID, "userId": aliceID}})
		if res.code() != "CONFLICT" {
			t.Fatalf("remove last owner: code %q", res.code())
		}

		// node(id) resolves projects for members only.
		var n struct{ Node struct{ Slug string } }
		s.must(bob, `query($id: ID!) { node(id: $id) { ... on Project { slug } } }`, map[string]any{"id": p.ID}, &n)
		if n.Node.Slug != "shop" {
			t.Fatalf("node = %+v", n)
		}

		// Duplicate slug is a conflict naming the field.
		res = s.do(alice, createProject, map[string]any{"in": map[string]any{"slug": "shop", "name": "again"}})
		if res.code() != "CONFLICT" || res.field() != "slug" {
			t.Fatalf("duplicate slug: code %q field %q", res.code(), res.field())
		}
	})
}

func TestEndToEndAuthentication(t *testing.T) {
	s := startStack(t, storetest.MustOpen(t))

	res := s.do("", `{ viewer { id } }`, nil)
	if res.code() != "UNAUTHENTICATED" {
		t.Fatalf("no token: code %q (%+v)", res.code(), res.Errors)
	}
	res = s.do("not-a-jwt", `{ viewer { id } }`, nil)
	if res.Status != http.StatusUnauthorized || res.code() != "UNAUTHENTICATED" {
		t.Fatalf("bad token: %d %q", res.Status, res.code())
	}
	other, _ := auth.Issue([]byte("another-secret-another-secret-000"), service.Identity{Subject: "mallory"}, time.Hour, time.Now())
	if res = s.do(other, `{ viewer { id } }`, nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("token signed with another secret: %d", res.Status)
	}
	expired, _ := auth.Issue(testSecret, service.Identity{Subject: "alice"}, time.Minute, time.Now().Add(-time.Hour))
	if res = s.do(expired, `{ viewer { id } }`, nil); res.Status != http.StatusUnauthorized || !strings.Contains(res.Errors[0].Message, "expired") {
		t.Fatalf("expired token: %d %+v", res.Status, res.Errors)
	}

	// The user is created on first sight and refreshed later.
	var v struct{ Viewer struct{ Name, Email string } }
	s.must(s.token("dora", "Dora"), `{ viewer { name email } }`, nil, &v)
	if v.Viewer.Name != "Dora" || v.Viewer.Email != "dora@example.com" {
		t.Fatalf("viewer = %+v", v.Viewer)
	}
}

func TestEndToEndInvalidInput(t *testing.T) {
	s := startStack(t, storetest.MustOpen(t))
	alice := s.token("alice", "Alice")
	pid := s.createProject(alice, "valid")

	const createEnv = `mutation($in: CreateEnvironmentInput!) { createEnvironment(input: $in) { environment { id } } }`
	const connect = `mutation($in: ConnectRepositoryInput!) { connectRepository(input: $in) { repository { id } } }`
	gitops := func(branch, path, interval string) map[string]any {
		return map[string]any{"enabled": true, "autoSync": true, "gitBranch": branch, "gitPath": path, "syncInterval": interval}
	}
	cases := []struct {
		name, query string
		in          map[string]any
		field       string
	}{
		{"slug not a DNS label", createProject, map[string]any{"slug": "Bad_Slug", "name": "x"}, "slug"},
		{"slug too long", createProject, map[string]any{"slug": strings.Repeat("a", 64), "name": "x"}, "slug"},
		{"empty name", createProject, map[string]any{"slug": "ok", "name": ""}, "name"},
		{"name too long", createProject, map[string]any{"slug": "ok", "name": strings.Repeat("n", 101)}, "name"},
		{"namespace invalid", createProject, map[string]any{"slug": "ok", "name": "x", "namespace": "-ns"}, "namespace"},
		{"deployment mode enum", createProject, map[string]any{"slug": "ok", "name": "x", "deploymentMode": "SIDEWAYS"}, "deploymentMode"},
		{"environment name", createEnv, map[string]any{"projectId": pid, "name": "Prod!", "type": "PRODUCTION"}, "name"},
		{"environment type enum", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "QA"}, "type"},
		{"git path escapes", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": gitops("main", "../secrets", "1m")}, "gitops.gitPath"},
		{"git path hidden escape", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": gitops("main", "k8s/../../x", "1m")}, "gitops.gitPath"},
		{"git path absolute", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": gitops("main", "/etc", "1m")}, "gitops.gitPath"},
		{"interval not a duration", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": gitops("main", "k8s", "soon")}, "gitops.syncInterval"},
		{"progress timeout too short", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": map[string]any{"enabled": true, "autoSync": true, "gitBranch": "main", "gitPath": "k8s", "syncInterval": "1m", "progressTimeout": "5s"}}, "gitops.progressTimeout"},
		{"branch invalid", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "gitops": gitops("bad..branch", "k8s", "1m")}, "gitops.gitBranch"},
		{"approvals out of range", createEnv, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION", "approval": map[string]any{"required": true, "minApprovals": 0}}, "approval.minApprovals"},
		{"clone URL scheme", connect, map[string]any{"projectId": pid, "cloneUrl": "ftp://example.com/repo.git"}, "cloneUrl"},
		{"clone URL with credentials", connect, map[string]any{"projectId": pid, "cloneUrl": "https://user:token@github.com/acme/repo.git"}, "cloneUrl"},
		{"clone URL not a URL", connect, map[string]any{"projectId": pid, "cloneUrl": "just words"}, "cloneUrl"},
		{"repository interval", connect, map[string]any{"projectId": pid, "cloneUrl": "git@github.com:acme/repo.git", "gitops": map[string]any{"enabled": true, "syncInterval": "1 minute"}}, "gitops.syncInterval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.do(alice, c.query, map[string]any{"in": c.in})
			if res.code() != "INVALID_INPUT" || res.field() != c.field {
				t.Fatalf("code %q field %q, want INVALID_INPUT %q (%+v)", res.code(), res.field(), c.field, res.Errors)
			}
		})
	}
	// Nothing was written by the failed mutations.
	var d struct {
		Project struct{ Environments, Repositories []struct{ ID string } }
	}
	s.must(alice, `query($id: ID) { project(id: $id) { environments { id } repositories { id } } }`, map[string]any{"id": pid}, &d)
	if len(d.Project.Environments)+len(d.Project.Repositories) != 0 {
		t.Fatalf("failed mutations left rows: %+v", d.Project)
	}
	// Valid forms are accepted.
	s.must(alice, connect, map[string]any{"in": map[string]any{"projectId": pid, "cloneUrl": "git@github.com:acme/repo.git"}}, nil)
	s.must(alice, connect, map[string]any{"in": map[string]any{"projectId": pid, "cloneUrl": "ssh://git@gitlab.com/acme/other.git"}}, nil)
}

func TestEndToEndPagination(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		s := startStack(t, open(t))
		alice := s.token("alice", "Alice")
		for i := 0; i < 250; i++ {
			s.createProject(alice, fmt.Sprintf("p%03d", i))
		}
		const list = `query($after: String) { projects(first: 100, after: $after) { edges { cursor node { slug } } pageInfo { hasNextPage endCursor } } }`
		type page struct {
			Projects struct {
				Edges []struct {
					Cursor string
					Node   struct{ Slug string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		var seen []string
		var after any
		for pages := 0; ; pages++ {
			var p page
			s.must(alice, list, map[string]any{"after": after}, &p)
			for _, e := range p.Projects.Edges {
				seen = append(seen, e.Node.Slug)
			}
			if pages == 0 {
				// Inserts between pages neither shift nor repeat items.
				s.createProject(alice, "zz-late")
			}
			if !p.Projects.PageInfo.HasNextPage {
				break
			}
			after = *p.Projects.PageInfo.EndCursor
		}
		if len(seen) != 251 {
			t.Fatalf("paged %d projects, want 251", len(seen))
		}
		for i := 0; i < 250; i++ {
			if seen[i] != fmt.Sprintf("p%03d", i) {
				t.Fatalf("item %d = %s: order broken", i, seen[i])
			}
		}
		if seen[250] != "zz-late" {
			t.Fatalf("last = %s", seen[250])
		}
		res := s.do(alice, `{ projects(first: 500) { edges { cursor } } }`, nil)
		if res.code() != "INVALID_INPUT" || res.field() != "first" {
			t.Fatalf("first=500: %q %q", res.code(), res.field())
		}
		res = s.do(alice, `{ projects(after: "garbage") { edges { cursor } } }`, nil)
		if res.code() != "INVALID_INPUT" || res.field() != "after" {
			t.Fatalf("bad cursor: %q %q", res.code(), res.field())
		}
	})
}

func TestGraphQLOverHTTP(t *testing.T) {
	s := startStack(t, storetest.MustOpen(t))
	alice := s.token("alice", "Alice")

	post := func(accept, body string) *gqlResponse {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		return s.send(req)
	}
	// Parse and validation errors: 200 with application/json, no data key.
	for _, body := range []string{`{"query":"{ viewer { "}`, `{"query":"{ nope }"}`} {
		r := post("application/json", body)
		if r.Status != http.StatusOK || len(r.Errors) == 0 {
			t.Fatalf("%s: %d %+v", body, r.Status, r.Errors)
		}
		if _, ok := r.raw["data"]; ok {
			t.Fatalf("%s: request error carries a data key", body)
		}
		// With application/graphql-response+json: 400.
		if r := post("application/graphql-response+json", body); r.Status != http.StatusBadRequest {
			t.Fatalf("%s graphql-response+json: %d", body, r.Status)
		}
	}
	// A body that is not JSON: 400 without echoing it.
	r := post("", `{"query": "secret-password`)
	if r.Status != http.StatusBadRequest || strings.Contains(fmt.Sprint(r.Errors), "secret-password") {
		t.Fatalf("bad JSON: %d %+v", r.Status, r.Errors)
	}
	// GET runs queries but never mutations.
	get := func(q string) *gqlResponse {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+alice)
		return s.send(req)
	}
	if r := get(`{ viewer { name } }`); r.Status != http.StatusOK || len(r.Errors) != 0 {
		t.Fatalf("GET query: %d %+v", r.Status, r.Errors)
	}
	if r := get(`mutation { createTeam(input: {slug: "t", name: "t"}) { team { id } } }`); len(r.Errors) == 0 {
		t.Fatal("GET ran a mutation")
	}
	// Bodies over 1 MiB: 413.
	big := `{"query":"{ viewer { name } }","variables":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`
	if r := post("", big); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body: %d", r.Status)
	}
	// Depth limit.
	deep := `{ projects { edges { node { environments { project { environments { project { environments { project { environments { project { environments { project { name } } } } } } } } } } } } } }`
	if r := post("", `{"query":"`+deep+`"}`); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "limit") {
		t.Fatalf("deep query: %+v", r.Errors)
	}
	// Probes and metrics.
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready":true`, "/metrics": "fluxgate_graphql_operations_total"} {
		res, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %.200s", path, res.StatusCode, b)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
