package e2e_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/bustest"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/redis"
	"github.com/fluxgate/fluxgate/server/ws"
	"github.com/fluxgate/fluxgate/webhook"
)

const (
	project = "p1"
	secret  = "hmac-secret"
)

// database plays the store shared by the replicas: Seq in commit order,
// one row per dedup key.
type database struct {
	mu     sync.Mutex
	events []*fluxgate.FluxEvent
}

func (d *database) create(e *fluxgate.FluxEvent) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, old := range d.events {
		if old.DedupKey == e.DedupKey {
			return false
		}
	}
	e.Seq = int64(len(d.events) + 1)
	e.CreatedAt = time.Now()
	d.events = append(d.events, e)
	return true
}

func (d *database) ListFluxEvents(_ context.Context, f fluxgate.FluxEventFilter) ([]*fluxgate.FluxEvent, fluxgate.PageInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*fluxgate.FluxEvent
	for _, e := range d.events {
		if e.ProjectID == f.ProjectID && e.Seq > f.AfterSeq && len(out) < f.Page.Limit() {
			out = append(out, e)
		}
	}
	return out, fluxgate.PageInfo{}, nil
}

func (d *database) head() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.events))
}

// service is the webhook's Sink on one replica: store, then publish.
type service struct {
	db  *database
	bus fluxgate.Publisher
}

func (s *service) HandleFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) error {
	e.ProjectID = project // the real service maps the object to its project
	if !s.db.create(e) {
		return nil
	}
	ev, err := hub.FluxEventMessage(e)
	if err != nil {
		return err
	}
	return s.bus.Publish(ctx, fluxgate.ProjectTopic(project), ev)
}

type replica struct {
	bus *redis.Bus
	hub *hub.Hub
	web *httptest.Server
}

func newReplica(t *testing.T, url, prefix string, db *database) *replica {
	t.Helper()
	client, err := redis.Open(context.Background(), url, "")
	if err != nil {
		t.Fatal(err)
	}
	bus := redis.NewBus(client, redis.BusOptions{Prefix: prefix})
	t.Cleanup(func() { bus.Close(); client.Close() })
	r := &replica{bus: bus, hub: hub.New(bus, hub.Options{})}

	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { ok: Boolean! }
		type FluxEvent { seq: Int! reason: String! message: String! }
		type Subscription { fluxEvents(after: Int): FluxEvent! }
	`})
	gql := handler.New(&graphql.ExecutableSchemaMock{
		SchemaFunc:     func() *ast.Schema { return schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) { return 1, true },
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			// The fluxEvents resolver, as the lead's would call the hub.
			after := db.head()
			if v, ok := graphql.GetOperationContext(ctx).Variables["after"]; ok && v != nil {
				fmt.Sscan(fmt.Sprint(v), &after)
			}
			stream, err := hub.Subscribe(ctx, r.hub, hub.Request{
				Topic: fluxgate.ProjectTopic(project), After: after, Replay: hub.FluxEventReplay(db, project),
			}, hub.DecodeFluxEvent)
			if err != nil {
				return graphql.OneShot(graphql.ErrorResponse(ctx, "%v", err))
			}
			return func(ctx context.Context) *graphql.Response {
				select {
				case <-ctx.Done():
					return nil
				case fe, ok := <-stream.C():
					if !ok {
						return nil
					}
					data, _ := json.Marshal(map[string]any{"fluxEvents": map[string]any{"seq": fe.Seq, "reason": fe.Reason, "message": fe.Message}})
					return &graphql.Response{Data: data}
				}
			}
		},
	})
	gql.AddTransport(ws.New(ws.Config{Authenticate: func(ctx context.Context, token string) (context.Context, time.Time, error) {
		if token != "valid" {
			return ctx, time.Time{}, fmt.Errorf("bad token")
		}
		return ctx, time.Time{}, nil
	}}))
	gql.Use(ws.SubscriptionLimit{})

	mux := http.NewServeMux()
	mux.Handle("/graphql", gql)
	mux.Handle("POST /webhooks/flux", webhook.NewHandler(webhook.Config{
		Secrets: []webhook.Secret{{ID: "flux", Value: []byte(secret)}},
		Sink:    &service{db: db, bus: bus},
	}))
	r.web = httptest.NewServer(mux)
	t.Cleanup(r.web.Close)
	return r
}

func postFluxEvent(t *testing.T, r *replica, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.web.URL+"/webhooks/flux", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(webhook.Sign([]byte(secret), body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: status %d", resp.StatusCode)
	}
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

// subscribe opens a graphql-transport-ws connection to r and subscribes
// to fluxEvents after the cursor (nil: none).
func subscribe(t *testing.T, r *replica, after *int64) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(r.web.URL, "http")+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	c.send(map[string]any{"type": "connection_init", "payload": map[string]string{"authToken": "valid"}})
	if m := c.read(); m.Type != "connection_ack" {
		t.Fatalf("got %s", m.Type)
	}
	vars := map[string]any{}
	if after != nil {
		vars["after"] = *after
	}
	c.send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($after: Int) { fluxEvents(after: $after) { seq reason message } }`, "variables": vars}})
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

type frame struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (c *wsClient) read() frame {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f frame
		if err := c.conn.ReadJSON(&f); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if f.Type == "ping" {
			c.send(map[string]string{"type": "pong"})
			continue
		}
		return f
	}
}

type fluxEvent struct {
	Seq     int64  `json:"seq"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (c *wsClient) next() fluxEvent {
	c.t.Helper()
	f := c.read()
	var p struct {
		Data struct {
			FluxEvents fluxEvent `json:"fluxEvents"`
		} `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if f.Type != "next" || json.Unmarshal(f.Payload, &p) != nil || p.Errors != nil {
		c.t.Fatalf("got %s %s", f.Type, f.Payload)
	}
	return p.Data.FluxEvents
}

func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		var f frame
		if err := c.conn.ReadJSON(&f); err != nil {
			return // deadline: nothing arrived
		}
		if f.Type != "ping" {
			c.t.Fatalf("unexpected %s %s", f.Type, f.Payload)
		}
		c.send(map[string]string{"type": "pong"})
	}
}

func TestWebhookOnOneReplicaReachesSubscriberOnAnother(t *testing.T) {
	url := bustest.RedisURL(t)
	prefix := fmt.Sprintf("fluxgate-e2e:%d:", time.Now().UnixNano())
	db := &database{}
	a, b := newReplica(t, url, prefix, db), newReplica(t, url, prefix, db)
	fixture, err := os.ReadFile("../../webhook/testdata/gitrepository-newartifact.json")
	if err != nil {
		t.Fatal(err)
	}

	client := subscribe(t, a, nil)
	for deadline := time.Now().Add(5 * time.Second); a.hub.Active() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the subscription did not reach the hub")
		}
	}
	postFluxEvent(t, b, fixture)
	got := client.next()
	if got.Seq != 1 || got.Reason != "NewArtifact" {
		t.Fatalf("first event: %+v", got)
	}
	postFluxEvent(t, b, fixture) // redelivered by notification-controller
	client.quiet(300 * time.Millisecond)
	if db.head() != 1 {
		t.Fatalf("stored %d events, want 1", db.head())
	}
	client.conn.Close()

	// 100 events while the client is away, then it resumes with its cursor.
	for i := range 100 {
		body := bytes.Replace(fixture, []byte("stored artifact for commit 'v1'"), fmt.Appendf(nil, "stored artifact for commit 'v%d'", i+2), 1)
		postFluxEvent(t, b, body)
	}
	cursor := got.Seq
	client = subscribe(t, a, &cursor)
	for want := int64(2); want <= 101; want++ {
		if ev := client.next(); ev.Seq != want || ev.Message != fmt.Sprintf("stored artifact for commit 'v%d'", want) {
			t.Fatalf("got %+v, want seq %d", ev, want)
		}
	}
	// And live again, from either replica.
	postFluxEvent(t, a, bytes.Replace(fixture, []byte("'v1'"), []byte("'v200'"), 1))
	if ev := client.next(); ev.Seq != 102 {
		t.Fatalf("live after resume: %+v", ev)
	}
	client.quiet(200 * time.Millisecond)
}
