package server_test

// End-to-end tests of the realtime features (issue 5) on the real schema
// and the real server: two server instances sharing one PostgreSQL schema
// and one Redis, driven by real HTTP and real websocket clients speaking
// graphql-transport-ws and the legacy graphql-ws.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/bustest"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
	"github.com/fluxgate/fluxgate/redis"
	"github.com/fluxgate/fluxgate/server"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/store/storetest"
	"github.com/fluxgate/fluxgate/webhook"
)

const (
	wsWriteTimeout = 2 * time.Second
	webhookSecret  = "webhook-hmac-secret-for-tests"
	fixtureDir     = "../../shared/fixtures/flux-events/"

	protoTransportWS = "graphql-transport-ws" // the graphql-ws npm client
	protoLegacyWS    = "graphql-ws"           // subscriptions-transport-ws
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// replica is one fluxgate server of a two-replica deployment.
type replica struct {
	*stack
	db    *store.DB
	hub   *hub.Hub
	bus   fluxgate.EventBus
	redis *goredis.Client // nil on the in-memory bus
	name  string          // CLIENT SETNAME of its Redis connections
}

// deployment is two replicas sharing PostgreSQL and Redis.
type deployment struct {
	a, b   *replica
	admin  *goredis.Client // for CLIENT LIST / KILL
	proxyA *redisProxy     // replica A reaches Redis through it
	prefix string
	dsn    string
}

// startDeployment starts two replicas on one fresh PostgreSQL schema and
// one Redis (A through a proxy that can cut it off), with a key and channel prefix of their own. It skips without
// DATABASE_URL or REDIS_URL (unless required).
func startDeployment(tb testing.TB) *deployment {
	tb.Helper()
	url := bustest.RedisURL(tb)
	dsn := storetest.PostgresDSN(tb)
	id := randomHex(6)
	d := &deployment{prefix: "fluxgate-e2e:" + id + ":", proxyA: startRedisProxy(tb, url), dsn: dsn}
	admin, err := redis.Open(context.Background(), url, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Close() })
	d.admin = admin
	d.a = startReplica(tb, storetest.MustOpenDSN(tb, dsn), d.proxyA.url(url), d.prefix, "fluxgate-e2e-"+id+"-a")
	d.b = startReplica(tb, storetest.MustOpenDSN(tb, dsn), url, d.prefix, "fluxgate-e2e-"+id+"-b")
	return d
}

// startReplica starts a whole server wired as cmd/fluxgate does with
// REDIS_URL and FLUXGATE_WEBHOOK_SECRET set.
func startReplica(tb testing.TB, db *store.DB, url, prefix, name string) *replica {
	tb.Helper()
	client, err := redis.Open(context.Background(), url, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	logger := testLogger(name)
	bus := redis.NewBus(client, redis.BusOptions{Prefix: prefix, Logger: logger})
	tb.Cleanup(func() { bus.Close() })
	r := startServer(tb, db, bus, redis.NewPresence(client, bus, redis.PresenceOptions{Prefix: prefix}), name)
	r.redis = client
	return r
}

// startSingleReplica starts a server on the in-memory bus: a deployment of
// one replica, without Redis.
func startSingleReplica(tb testing.TB, db *store.DB, name string) *replica {
	tb.Helper()
	bus := inmem.NewBus(0)
	tb.Cleanup(func() { bus.Close() })
	return startServer(tb, db, bus, inmem.NewPresence(bus, inmem.PresenceOptions{}), name)
}

func testLogger(name string) *slog.Logger {
	if os.Getenv("FLUXGATE_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(tb testing.TB, db *store.DB, bus fluxgate.EventBus, presence fluxgate.PresenceStore, name string) *replica {
	tb.Helper()
	logger := testLogger(name)
	h := hub.New(bus, hub.Options{Logger: logger})
	svc := service.New(db, service.WithLogger(logger), service.WithPublisher(bus), service.WithRealtime(h, presence))
	srv := server.New(server.Config{
		Service: svc,
		Auth:    auth.New(testSecret, "", svc),
		Logger:  logger,
		Ready:   []server.Check{{Name: "database", Check: db.Ping}},
		// A client that reads nothing for this long is disconnected
		// (TestRealtimeSlowSubscriber).
		WebsocketWriteTimeout: wsWriteTimeout,
		Routes: map[string]http.Handler{"/webhooks/flux": webhook.NewHandler(webhook.Config{
			Secrets: []webhook.Secret{{ID: "default", Value: []byte(webhookSecret)}},
			Sink:    svc,
			Logger:  logger,
		})},
	})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &replica{stack: &stack{t: tb, url: "http://" + srv.Addr()}, db: db, hub: h, bus: bus, name: name}
}

// waitActive waits until the replica's hub holds n streams: a stream is
// counted only once Redis confirmed its SUBSCRIBE, so what is published
// afterwards reaches it.
func (r *replica) waitActive(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.hub.Active() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("replica %s holds %d streams, want %d", r.name, r.hub.Active(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killRedisClients kills every Redis connection named name (pub/sub and
// pooled), as a network cut would, and returns how many it killed. Safe
// to call from any goroutine.
func (d *deployment) killRedisClients(name string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := d.admin.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		named := false
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch {
			case k == "id":
				id = v
			case k == "name" && v == name:
				named = true
			}
		}
		if named && id != "" {
			if err := d.admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
				killed++
			}
		}
	}
	return killed, nil
}

// redisProxy forwards TCP connections to Redis and can cut them all and
// refuse new ones for a while: a network partition between one replica
// and Redis, longer than CLIENT KILL's (go-redis reconnects at once).
type redisProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	down  time.Time // refuse connections until then
}

func startRedisProxy(tb testing.TB, redisURL string) *redisProxy {
	tb.Helper()
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &redisProxy{ln: ln, target: opt.Addr, conns: map[net.Conn]struct{}{}}
	tb.Cleanup(func() {
		ln.Close()
		p.cut(0)
	})
	go p.serve()
	return p
}

// url returns redisURL with the proxy's address.
func (p *redisProxy) url(redisURL string) string {
	opt, _ := goredis.ParseURL(redisURL)
	return strings.Replace(redisURL, opt.Addr, p.ln.Addr().String(), 1)
}

func (p *redisProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := time.Now().Before(p.down)
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cut closes every proxied connection and refuses new ones for d.
func (p *redisProxy) cut(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = time.Now().Add(d)
	for c := range p.conns {
		c.Close()
	}
}

// project is a project with an environment and managed Flux objects.
type project struct {
	id, envID string
	resources map[string]*fluxgate.GitOpsResource // by "Kind/name"
}

// newProject creates a project (and an environment) through GraphQL as
// owner, and the GitOps resource rows of the Flux objects (namespace
// flux-system) through the store: there is no resource mutation without a
// cluster.
func (d *deployment) newProject(t *testing.T, owner, slug string, objects ...string) *project {
	t.Helper()
	p := &project{id: d.a.createProject(owner, slug), resources: map[string]*fluxgate.GitOpsResource{}}
	var ce struct {
		CreateEnvironment struct{ Environment struct{ ID string } }
	}
	d.a.must(owner, `mutation($in: CreateEnvironmentInput!) { createEnvironment(input: $in) { environment { id } } }`,
		map[string]any{"in": map[string]any{"projectId": p.id, "name": "staging", "type": "STAGING"}}, &ce)
	p.envID = ce.CreateEnvironment.Environment.ID
	for _, o := range objects {
		kind, name, _ := strings.Cut(o, "/")
		r := &fluxgate.GitOpsResource{ProjectID: p.id, EnvironmentID: &p.envID, Kind: fluxgate.ResourceKind(kind),
			Name: name, Namespace: "flux-system", Spec: json.RawMessage(`{}`)}
		if err := d.a.db.CreateResource(context.Background(), r); err != nil {
			t.Fatalf("create resource %s: %v", o, err)
		}
		p.resources[o] = r
	}
	return p
}

func (d *deployment) addMember(t *testing.T, owner string, p *project, member, role string) {
	t.Helper()
	d.a.must(owner, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": p.id, "userId": d.a.viewerID(member), "role": role}}, nil)
}

// fixture returns a notification-controller payload from the shared
// fixtures, changed by edit (nil: as recorded).
func fixture(tb testing.TB, name string, edit func(ev map[string]any)) []byte {
	tb.Helper()
	b, err := os.ReadFile(fixtureDir + name)
	if err != nil {
		tb.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		tb.Fatal(err)
	}
	edit(ev)
	if b, err = json.Marshal(ev); err != nil {
		tb.Fatal(err)
	}
	return b
}

// kustomizationEvent is the Kustomization fixture about object name with
// message msg (distinct messages are distinct events).
func kustomizationEvent(tb testing.TB, name, msg string) []byte {
	return fixture(tb, "kustomization-progressing.json", func(ev map[string]any) {
		ev["involvedObject"].(map[string]any)["name"] = name
		ev["message"] = msg
	})
}

// postWebhook posts body to the replica's /webhooks/flux signed with key
// (nil: unsigned) and returns the status.
func postWebhook(tb testing.TB, url string, body, key []byte) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/flux", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != nil {
		req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(webhook.Sign(key, body)))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// post delivers a signed event to the replica's webhook; it must be
// accepted.
func (r *replica) post(tb testing.TB, body []byte) {
	tb.Helper()
	if code := postWebhook(tb, r.url, body, []byte(webhookSecret)); code != http.StatusAccepted {
		tb.Fatalf("webhook on %s: status %d, want 202", r.name, code)
	}
}

// wsMsg is one protocol message.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
	At      time.Time       `json:"-"` // when it was read
}

// wsClient is a GraphQL websocket client speaking either subprotocol.
type wsClient struct {
	tb    testing.TB
	conn  *websocket.Conn
	proto string

	wmu     sync.Mutex
	msgs    chan wsMsg
	done    chan struct{} // closed when the reader ends
	readErr error         // why, once done is closed
	reading atomic.Bool
	// readDelay, if set before startReading, is a pause after each message
	// read: a client that reads, but slowly.
	readDelay time.Duration
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + "/graphql" }

// dialWS opens a websocket with proto and sends connection_init with
// payload; it does not wait for the ack.
func dialWS(tb testing.TB, httpURL, proto string, payload map[string]any) *wsClient {
	tb.Helper()
	return dialWSBuffer(tb, httpURL, proto, payload, 0)
}

// dialWSBuffer is dialWS with the socket's kernel receive buffer set to
// rcvbuf bytes (0: the system's default).
func dialWSBuffer(tb testing.TB, httpURL, proto string, payload map[string]any, rcvbuf int) *wsClient {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(rcvbuf)
			}
			return c, err
		}
	}
	conn, res, err := d.Dial(wsURL(httpURL), nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", proto, err)
	}
	res.Body.Close()
	if conn.Subprotocol() != proto {
		tb.Fatalf("negotiated %q, want %q", conn.Subprotocol(), proto)
	}
	c := &wsClient{tb: tb, conn: conn, proto: proto, msgs: make(chan wsMsg, 8192), done: make(chan struct{})}
	tb.Cleanup(func() { conn.Close() })
	c.send(wsMsg{Type: "connection_init", Payload: mustJSON(tb, payload)})
	return c
}

// connect opens an authenticated connection: connection_init with the
// token, then the ack. The client reads in the background from then on.
func connect(tb testing.TB, r *replica, proto, token string) *wsClient {
	tb.Helper()
	c := dialWS(tb, r.url, proto, map[string]any{"authToken": token})
	c.startReading()
	if m := c.next(10 * time.Second); m.Type != "connection_ack" {
		tb.Fatalf("%s: got %s %s, want connection_ack", proto, m.Type, m.Payload)
	}
	return c
}

func mustJSON(tb testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (c *wsClient) send(m wsMsg) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.conn.WriteJSON(m); err != nil {
		c.tb.Errorf("websocket write: %v", err)
	}
}

// startReading starts the background reader: it answers pings, drops
// keepalives and queues everything else.
func (c *wsClient) startReading() {
	if c.reading.Swap(true) {
		return
	}
	go func() {
		defer close(c.done)
		for {
			if c.readDelay > 0 {
				time.Sleep(c.readDelay)
			}
			_, data, err := c.conn.ReadMessage()
			if err != nil {
				c.readErr = err
				return
			}
			m := wsMsg{At: time.Now()}
			if err := json.Unmarshal(data, &m); err != nil {
				c.readErr = fmt.Errorf("undecodable message %.200s: %w", data, err)
				return
			}
			switch m.Type {
			case "ping":
				c.send(wsMsg{Type: "pong"})
				continue
			case "pong", "ka":
				continue
			}
			c.msgs <- m
		}
	}()
}

// next returns the next message; Type "closed" once the connection ended
// (Payload then holds the error text). Fails after timeout.
func (c *wsClient) next(timeout time.Duration) wsMsg {
	c.tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		select {
		case m := <-c.msgs:
			return m
		default:
		}
		return wsMsg{Type: "closed", Payload: mustJSON(c.tb, fmt.Sprint(c.readErr))}
	case <-timer.C:
		c.tb.Fatalf("%s: no message within %v", c.proto, timeout)
		return wsMsg{}
	}
}

// subscribe starts operation id.
func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	typ := "subscribe"
	if c.proto == protoLegacyWS {
		typ = "start"
	}
	c.send(wsMsg{ID: id, Type: typ, Payload: mustJSON(c.tb, map[string]any{"query": query, "variables": vars})})
}

// gqlPayload is the payload of a next/data message.
type gqlPayload struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// result returns the data of the next result of operation id, or the
// first error's code (ending with "complete" or "closed" when the
// operation or the connection ended without one).
func (c *wsClient) result(id string, timeout time.Duration) (data json.RawMessage, code string) {
	c.tb.Helper()
	for {
		m := c.next(timeout)
		switch m.Type {
		case "closed":
			return nil, "closed: " + string(m.Payload)
		case "next", "data":
			if m.ID != id {
				continue
			}
			var p gqlPayload
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				c.tb.Fatal(err)
			}
			if len(p.Errors) > 0 {
				code, _ := p.Errors[0].Extensions["code"].(string)
				return nil, "error: " + code + ": " + p.Errors[0].Message
			}
			return p.Data, ""
		case "error":
			if m.ID != id {
				continue
			}
			var errs []gqlError
			if json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
				var one gqlError
				_ = json.Unmarshal(m.Payload, &one)
				errs = []gqlError{one}
			}
			code, _ := errs[0].Extensions["code"].(string)
			return nil, "error: " + code + ": " + errs[0].Message
		case "complete":
			if m.ID == id {
				return nil, "complete"
			}
		default:
			c.tb.Fatalf("unexpected %s message: %s", m.Type, m.Payload)
		}
	}
}

// fluxEventMsg is a fluxEvents subscription result.
type fluxEventMsg struct {
	Cursor, Kind, Name, Namespace, Reason, Message, Severity, Source, Revision string
	ResourceID                                                                 *string
}

const fluxEventsSubscription = `subscription($p: ID!, $after: String) { fluxEvents(projectId: $p, after: $after) {
	cursor kind name namespace reason message severity source revision resourceId } }`

func (c *wsClient) subscribeFluxEvents(id, projectID, after string) {
	vars := map[string]any{"p": projectID}
	if after != "" {
		vars["after"] = after
	}
	c.subscribe(id, fluxEventsSubscription, vars)
}

// fluxEvent returns the next Flux event of operation id; it fails on an
// error or an end.
func (c *wsClient) fluxEvent(id string, timeout time.Duration) fluxEventMsg {
	c.tb.Helper()
	data, code := c.result(id, timeout)
	if code != "" {
		c.tb.Fatalf("%s fluxEvents %s: %s", c.proto, id, code)
	}
	var d struct{ FluxEvents fluxEventMsg }
	if err := json.Unmarshal(data, &d); err != nil {
		c.tb.Fatal(err)
	}
	return d.FluxEvents
}

// TestRealtimeCrossReplicaFluxEvents: an event posted to replica B's
// webhook (the real fixtures) reaches fluxEvents subscribers on replica A
// over both subprotocols; bad tokens close with 4403.
func TestRealtimeCrossReplicaFluxEvents(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo", "GitRepository/demo")

	clients := []*wsClient{connect(t, d.a, protoTransportWS, alice), connect(t, d.a, protoLegacyWS, alice)}
	for _, c := range clients {
		c.subscribeFluxEvents("1", p.id, "")
	}
	d.a.waitActive(t, 2)

	cases := []struct {
		fixture, kind, reason, message, resource string
	}{
		{"kustomization-progressing.json", "Kustomization", "Progressing", "ConfigMap/default/demo-config created", "Kustomization/demo"},
		{"gitrepository-newartifact.json", "GitRepository", "NewArtifact", "stored artifact for commit 'v1'", "GitRepository/demo"},
	}
	for _, tc := range cases {
		d.b.post(t, fixture(t, tc.fixture, nil))
		for _, c := range clients {
			ev := c.fluxEvent("1", 10*time.Second)
			if ev.Kind != tc.kind || ev.Name != "demo" || ev.Namespace != "flux-system" || ev.Reason != tc.reason ||
				ev.Message != tc.message || ev.Source != "webhook" || ev.Severity != "info" ||
				ev.Revision != "main@sha1:e47f4bc4a77fa7873fceb03fa39601fc4361dc9f" || ev.Cursor == "" {
				t.Fatalf("%s received %+v for %s", c.proto, ev, tc.fixture)
			}
			if ev.ResourceID == nil || *ev.ResourceID != p.resources[tc.resource].ID {
				t.Fatalf("%s: resourceId %v, want %s", c.proto, ev.ResourceID, p.resources[tc.resource].ID)
			}
		}
	}

	t.Run("connection_init without a valid token closes with 4403", func(t *testing.T) {
		expired, _ := auth.Issue(testSecret, service.Identity{Subject: "alice"}, time.Minute, time.Now().Add(-time.Hour))
		for _, proto := range []string{protoTransportWS, protoLegacyWS} {
			for name, payload := range map[string]map[string]any{
				"missing":  {},
				"garbage":  {"authToken": "not-a-jwt"},
				"expired":  {"Authorization": "Bearer " + expired},
				"wrongkey": {"authToken": mustIssue(t, []byte("another-secret-another-secret-000"), "alice")},
			} {
				c := dialWS(t, d.a.url, proto, payload)
				_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				var err error
				for err == nil {
					var data []byte
					if _, data, err = c.conn.ReadMessage(); err == nil && strings.Contains(string(data), "connection_ack") {
						t.Fatalf("%s %s token: acknowledged", proto, name)
					}
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != 4403 {
					t.Fatalf("%s %s token: %v, want close 4403", proto, name, err)
				}
			}
		}
	})
}

func mustIssue(tb testing.TB, secret []byte, subject string) string {
	tok, err := auth.Issue(secret, service.Identity{Subject: subject}, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// presenceEntryMsg is one entry of a presence list.
type presenceEntryMsg struct {
	UserID, Name, Mode, Field, Since string
}

const presenceSubscription = `subscription($e: ID!, $m: PresenceMode!) { presence(environmentId: $e, mode: $m) { userId name mode field since } }`

// presenceUntil reads presence lists of operation id until ok accepts
// one, and returns it; it fails at the deadline.
func (c *wsClient) presenceUntil(id string, timeout time.Duration, ok func([]presenceEntryMsg) bool) []presenceEntryMsg {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	var last []presenceEntryMsg
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.tb.Fatalf("%s: presence never matched; last list %+v", c.proto, last)
		}
		data, code := c.result(id, left)
		if code != "" {
			c.tb.Fatalf("%s presence: %s", c.proto, code)
		}
		var d struct{ Presence []presenceEntryMsg }
		if err := json.Unmarshal(data, &d); err != nil {
			c.tb.Fatal(err)
		}
		if last = d.Presence; ok(last) {
			return last
		}
	}
}

func findEntry(list []presenceEntryMsg, userID string) *presenceEntryMsg {
	for i := range list {
		if list[i].UserID == userID {
			return &list[i]
		}
	}
	return nil
}

// TestRealtimeCrossReplicaPresence: presence joined on A is seen on B with
// the full list, updatePresence on B is seen on A, and closing A's socket
// removes the entry on B at once (well before the TTL).
func TestRealtimeCrossReplicaPresence(t *testing.T) {
	d := startDeployment(t)
	alice, bob := d.a.token("alice", "Alice"), d.a.token("bob", "Bob")
	aliceID, bobID := d.a.viewerID(alice), d.a.viewerID(bob)
	p := d.newProject(t, alice, "shop")
	d.addMember(t, alice, p, bob, "VIEWER")

	onA := connect(t, d.a, protoTransportWS, alice)
	onA.subscribe("p", presenceSubscription, map[string]any{"e": p.envID, "m": "EDITING"})
	onA.presenceUntil("p", 10*time.Second, func(l []presenceEntryMsg) bool { return findEntry(l, aliceID) != nil })

	onB := connect(t, d.b, protoLegacyWS, bob)
	onB.subscribe("p", presenceSubscription, map[string]any{"e": p.envID, "m": "VIEWING"})
	both := func(l []presenceEntryMsg) bool {
		a, b := findEntry(l, aliceID), findEntry(l, bobID)
		return len(l) == 2 && a != nil && b != nil && a.Mode == "EDITING" && a.Name == "Alice" && b.Mode == "VIEWING" && b.Name == "Bob"
	}
	list := onB.presenceUntil("p", 10*time.Second, both)
	if list[0].UserID != aliceID || list[0].Since == "" {
		t.Fatalf("B's list %+v: want the earliest arrival (alice) first", list)
	}
	onA.presenceUntil("p", 10*time.Second, both) // A learns of bob through Redis

	// Alice says what she edits, through replica B.
	var up struct {
		UpdatePresence struct{ Present []presenceEntryMsg }
	}
	d.b.must(alice, `mutation($in: UpdatePresenceInput!) { updatePresence(input: $in) { present { userId field mode } } }`,
		map[string]any{"in": map[string]any{"environmentId": p.envID, "field": "spec.replicas"}}, &up)
	if e := findEntry(up.UpdatePresence.Present, aliceID); e == nil || e.Field != "spec.replicas" {
		t.Fatalf("updatePresence returned %+v", up.UpdatePresence.Present)
	}
	editing := func(l []presenceEntryMsg) bool {
		e := findEntry(l, aliceID)
		return len(l) == 2 && e != nil && e.Field == "spec.replicas"
	}
	onA.presenceUntil("p", 10*time.Second, editing)
	onB.presenceUntil("p", 10*time.Second, editing)

	// Someone with no open presence subscription cannot update one.
	carol := d.a.token("carol", "Carol")
	d.addMember(t, alice, p, carol, "VIEWER")
	res := d.a.do(carol, `mutation($in: UpdatePresenceInput!) { updatePresence(input: $in) { present { userId } } }`,
		map[string]any{"in": map[string]any{"environmentId": p.envID, "field": "x"}})
	if res.code() != "NOT_FOUND" {
		t.Fatalf("updatePresence without presence: %q %+v", res.code(), res.Errors)
	}

	// Alice closes her tab: the entry leaves at once, not after the TTL.
	start := time.Now()
	_ = onA.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "tab closed"), time.Now().Add(time.Second))
	onA.conn.Close()
	onB.presenceUntil("p", 5*time.Second, func(l []presenceEntryMsg) bool {
		return len(l) == 1 && l[0].UserID == bobID
	})
	if took := time.Since(start); took > fluxgate.DefaultPresenceTTL/6 {
		t.Fatalf("leave took %v", took)
	}
	t.Logf("leave seen on the other replica after %v", time.Since(start))
}

// TestRealtimeProjectIsolation: a member of project Y receives nothing of
// project X; someone who is not a member of X cannot subscribe to it.
func TestRealtimeProjectIsolation(t *testing.T) {
	d := startDeployment(t)
	alice, carol := d.a.token("alice", "Alice"), d.a.token("carol", "Carol")
	x := d.newProject(t, alice, "xproj", "Kustomization/x-app")
	y := d.newProject(t, carol, "yproj", "Kustomization/y-app")

	onX := connect(t, d.a, protoTransportWS, alice)
	onX.subscribeFluxEvents("x", x.id, "")
	onY := connect(t, d.a, protoLegacyWS, carol)
	onY.subscribeFluxEvents("y", y.id, "")
	d.a.waitActive(t, 2)

	// Carol is no member of X: NOT_FOUND, over both subprotocols, and
	// the connection stays usable.
	for _, c := range []*wsClient{onY, connect(t, d.b, protoTransportWS, carol)} {
		c.subscribeFluxEvents("forbidden", x.id, "")
		if _, code := c.result("forbidden", 10*time.Second); !strings.HasPrefix(code, "error: NOT_FOUND") {
			t.Fatalf("%s: carol subscribing to X: %q, want NOT_FOUND", c.proto, code)
		}
	}
	// Nor may she read X's events.
	if res := d.b.do(carol, `query($p: ID!) { fluxEvents(projectId: $p) { edges { cursor } } }`, map[string]any{"p": x.id}); res.code() != "NOT_FOUND" {
		t.Fatalf("carol reading X's events: %q", res.code())
	}

	for round := range 2 {
		for i := range 5 {
			d.b.post(t, kustomizationEvent(t, "x-app", fmt.Sprintf("x %d-%d", round, i)))
		}
		// Y's event comes after X's on the same Redis connection: if any
		// of X's reached carol, it would come first.
		d.b.post(t, kustomizationEvent(t, "y-app", fmt.Sprintf("y %d", round)))
		if ev := onY.fluxEvent("y", 10*time.Second); ev.Name != "y-app" || ev.Message != fmt.Sprintf("y %d", round) {
			t.Fatalf("carol received %+v", ev)
		}
		for i := range 5 {
			if ev := onX.fluxEvent("x", 10*time.Second); ev.Message != fmt.Sprintf("x %d-%d", round, i) {
				t.Fatalf("alice received %+v, want x %d-%d", ev, round, i)
			}
		}
	}
}

// TestRealtimeResumeAfterMissing100: a client that reconnects with the
// cursor of the last event it saw gets the 100 it missed, in order and
// once each, then live ones.
func TestRealtimeResumeAfterMissing100(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo")

	c := connect(t, d.a, protoTransportWS, alice)
	c.subscribeFluxEvents("1", p.id, "")
	d.a.waitActive(t, 1)
	d.b.post(t, kustomizationEvent(t, "demo", "seen"))
	last := c.fluxEvent("1", 10*time.Second)
	if last.Message != "seen" {
		t.Fatalf("got %+v", last)
	}
	c.conn.Close()
	d.a.waitActive(t, 0)

	for i := range 100 {
		d.b.post(t, kustomizationEvent(t, "demo", fmt.Sprintf("missed %03d", i)))
	}

	var missed []string
	for i := range 100 {
		missed = append(missed, fmt.Sprintf("missed %03d", i))
	}
	// Each protocol resumes from the same cursor: the second also gets
	// the live event the first received.
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		c = connect(t, d.a, proto, alice)
		c.subscribeFluxEvents("2", p.id, last.Cursor)
		cursors := map[string]bool{last.Cursor: true}
		for i, want := range missed {
			ev := c.fluxEvent("2", 10*time.Second)
			if ev.Message != want {
				t.Fatalf("%s: replayed event %d is %q, want %q", proto, i, ev.Message, want)
			}
			if cursors[ev.Cursor] {
				t.Fatalf("%s: cursor %s twice", proto, ev.Cursor)
			}
			cursors[ev.Cursor] = true
		}
		d.a.waitActive(t, 1)
		live := "live " + proto
		d.b.post(t, kustomizationEvent(t, "demo", live))
		if ev := c.fluxEvent("2", 10*time.Second); ev.Message != live {
			t.Fatalf("%s: after the replay got %q, want %q", proto, ev.Message, live)
		}
		missed = append(missed, live)
		c.conn.Close()
		d.a.waitActive(t, 0)
	}
}

// TestRealtimeRedisConnectionsKilled: while events flow from B, the Redis
// connections of A, then of both replicas are killed, and in between A is
// cut off from Redis for 300ms (events published meanwhile never reach
// it through Redis); a subscriber on A that
// holds a cursor misses none and gets none twice (the hub backfills from
// the database when the bus resyncs).
func TestRealtimeRedisConnectionsKilled(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo")

	d.b.post(t, kustomizationEvent(t, "demo", "seed"))
	var q struct {
		FluxEvents struct{ Edges []struct{ Cursor string } }
	}
	d.a.must(alice, `query($p: ID!) { fluxEvents(projectId: $p, first: 1) { edges { cursor } } }`, map[string]any{"p": p.id}, &q)
	if len(q.FluxEvents.Edges) != 1 {
		t.Fatalf("seed event not stored: %+v", q)
	}
	withCursor := connect(t, d.a, protoTransportWS, alice)
	withCursor.subscribeFluxEvents("1", p.id, q.FluxEvents.Edges[0].Cursor)
	d.a.waitActive(t, 1)

	// The kills happen in the middle of the flow of posts (the client
	// reads in the background, so the test's own reading may lag).
	const n = 300
	var killedAt sync.Map
	posted := make(chan error, 1)
	go func() {
		posted <- func() error {
			for i := range n {
				var killed int
				var err error
				switch i {
				case 50: // the subscriber's replica
					killed, err = d.killRedisClients(d.a.name)
				case 120: // a partition: A cannot reach Redis for a while
					d.proxyA.cut(300 * time.Millisecond)
					killed = 1
				case 180: // both
					killed, err = d.killRedisClients(d.a.name)
					if k, err2 := d.killRedisClients(d.b.name); err2 == nil {
						killed += k
					}
				}
				if err != nil {
					return err
				}
				if killed > 0 {
					killedAt.Store(i, killed)
				}
				body := kustomizationEvent(t, "demo", fmt.Sprintf("flow %03d", i))
				if code := postWebhook(t, d.b.url, body, []byte(webhookSecret)); code != http.StatusAccepted {
					return fmt.Errorf("event %d: status %d", i, code)
				}
			}
			return nil
		}()
	}()
	for i := range n {
		ev := withCursor.fluxEvent("1", 20*time.Second)
		if want := fmt.Sprintf("flow %03d", i); ev.Message != want {
			t.Fatalf("event %d is %q, want %q", i, ev.Message, want)
		}
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	k50, _ := killedAt.Load(50)
	k180, _ := killedAt.Load(180)
	if k50 == nil || k180 == nil || k50.(int) < 1 || k180.(int) < 2 {
		t.Fatalf("killed %v and %v Redis connections: the test cut nothing", k50, k180)
	}
	// And it still flows live.
	d.b.post(t, kustomizationEvent(t, "demo", "after"))
	if ev := withCursor.fluxEvent("1", 10*time.Second); ev.Message != "after" {
		t.Fatalf("after the kills got %q", ev.Message)
	}
	t.Logf("killed %v Redis connections before event 50, %v before event 180", k50, k180)
}

// TestRealtimeSlowSubscriber: a websocket client that stops reading while
// many events are published is cut off; a fast client on the same replica
// receives everything.
func TestRealtimeSlowSubscriber(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo")

	fast := connect(t, d.a, protoTransportWS, alice)
	fast.subscribeFluxEvents("1", p.id, "")
	// The slow client takes the ack, then nobody reads its socket: the
	// kernel buffers fill (its receive buffer is kept small, the server's
	// send buffer grows to a few MB at most) and the server's writes to it
	// block. Large events (notification-controller allows messages of
	// ~39,000 characters) fill them fast: 300 × 30 KB = 9 MB.
	slow := dialWSBuffer(t, d.a.url, protoLegacyWS, map[string]any{"authToken": alice}, 64<<10)
	_ = slow.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := slow.conn.ReadMessage(); err != nil || !strings.Contains(string(data), "connection_ack") {
		t.Fatalf("slow client: %s %v", data, err)
	}
	_ = slow.conn.SetReadDeadline(time.Time{})
	slow.subscribeFluxEvents("1", p.id, "")
	d.a.waitActive(t, 2)

	pad := strings.Repeat("x", 30000)
	const n = 300
	start := time.Now()
	for i := range n {
		d.b.post(t, kustomizationEvent(t, "demo", fmt.Sprintf("%03d %s", i, pad)))
	}
	for i := range n {
		ev := fast.fluxEvent("1", 20*time.Second)
		if !strings.HasPrefix(ev.Message, fmt.Sprintf("%03d ", i)) {
			t.Fatalf("fast client: event %d is %.10q", i, ev.Message)
		}
	}
	t.Logf("fast client had all %d events (%d KB each) after %v", n, len(pad)/1000, time.Since(start))
	// The server's write to the stalled client timed out meanwhile: it
	// closed the connection, which ended the slow stream.
	d.a.waitActive(t, 1)

	// The slow client now reads what reached its socket: its stream ends
	// (the connection closed, or an error or complete) before all events.
	slow.startReading()
	got, end := 0, ""
	for end == "" {
		data, code := slow.result("1", 10*time.Second)
		switch {
		case code != "":
			end = code
		case data != nil:
			got++
		}
	}
	if got >= n {
		t.Fatalf("slow client received all %d events: it was never slow", got)
	}
	t.Logf("slow client cut off after %d of %d events: %s", got, n, end)
	// The fast one is still subscribed and live.
	d.b.post(t, kustomizationEvent(t, "demo", "after"))
	if ev := fast.fluxEvent("1", 10*time.Second); ev.Message != "after" {
		t.Fatalf("fast client after the cut: %q", ev.Message)
	}
}

// TestRealtimeSlowReaderGetsError: a client that reads, but slower than
// events come, is cut off by the bus; its subscription ends with an error
// that says so (not a "complete", which a client takes for a normal end),
// and the connection stays usable to subscribe again.
func TestRealtimeSlowReaderGetsError(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo")

	c := dialWSBuffer(t, d.a.url, protoTransportWS, map[string]any{"authToken": alice}, 64<<10)
	c.readDelay = 20 * time.Millisecond
	c.startReading()
	if m := c.next(10 * time.Second); m.Type != "connection_ack" {
		t.Fatalf("got %s", m.Type)
	}
	c.subscribeFluxEvents("1", p.id, "")
	d.a.waitActive(t, 1)

	// Events come from replica B's bus, as the service publishes them
	// once stored, much faster than the client reads.
	// Large events, so that the server's send buffer (a few MB at most)
	// holds few of them, and a client far slower than the server, even
	// under the race detector on a loaded machine.
	const n = 500
	pad := strings.Repeat("x", 50000)
	published := make(chan error, 1)
	go func() {
		for i := range n {
			ev, err := hub.FluxEventMessage(&fluxgate.FluxEvent{Seq: int64(i + 1), ProjectID: p.id, Kind: "Kustomization",
				Name: "demo", Namespace: "flux-system", Reason: "Progressing", Message: fmt.Sprintf("%03d %s", i, pad),
				Metadata: json.RawMessage(`{}`), CreatedAt: time.Now()})
			if err == nil {
				err = d.b.bus.Publish(context.Background(), fluxgate.ProjectTopic(p.id), ev)
			}
			if err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	got, end := 0, ""
	for end == "" {
		data, code := c.result("1", 20*time.Second)
		switch {
		case code != "":
			end = code
		case data != nil:
			got++
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if got >= n || !strings.HasPrefix(end, "error: UNAVAILABLE: subscriber too slow") {
		t.Fatalf("slow reader: %d of %d events, then %q; want an UNAVAILABLE too-slow error", got, n, end)
	}
	t.Logf("slow reader cut off after %d of %d events: %s", got, n, end)

	// The connection is fine: subscribing again works.
	d.a.waitActive(t, 0)
	c.subscribeFluxEvents("2", p.id, "")
	d.a.waitActive(t, 1)
	d.b.post(t, kustomizationEvent(t, "demo", "again"))
	if ev := c.fluxEvent("2", 10*time.Second); ev.Message != "again" {
		t.Fatalf("after resubscribing: %q", ev.Message)
	}
}

// TestRealtimeWebhook: a bad or missing signature is refused with 401 and
// stores nothing; the same event delivered twice is stored once.
func TestRealtimeWebhook(t *testing.T) {
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	p := d.newProject(t, alice, "shop", "Kustomization/demo", "GitRepository/demo")
	count := func() []fluxEventMsg {
		var q struct {
			FluxEvents struct{ Edges []struct{ Node fluxEventMsg } }
		}
		d.a.must(alice, `query($p: ID!) { fluxEvents(projectId: $p, first: 200) { edges { node { kind reason message } } } }`, map[string]any{"p": p.id}, &q)
		var out []fluxEventMsg
		for _, e := range q.FluxEvents.Edges {
			out = append(out, e.Node)
		}
		return out
	}

	body := fixture(t, "kustomization-progressing.json", nil)
	for name, key := range map[string][]byte{"wrong key": []byte("not-the-secret"), "unsigned": nil} {
		if code := postWebhook(t, d.b.url, body, key); code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", name, code)
		}
	}
	// A signature of another body.
	req, _ := http.NewRequest(http.MethodPost, d.b.url+"/webhooks/flux", bytes.NewReader(body))
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(webhook.Sign([]byte(webhookSecret), []byte("{}"))))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signature of another body: %d", res.StatusCode)
	}
	if evs := count(); len(evs) != 0 {
		t.Fatalf("refused deliveries stored %+v", evs)
	}

	// Every fixture, each delivered twice (to both replicas): stored once.
	for _, f := range []string{"kustomization-progressing.json", "gitrepository-newartifact.json"} {
		body := fixture(t, f, nil)
		d.b.post(t, body)
		d.a.post(t, body)
		d.b.post(t, body)
	}
	evs := count()
	reasons := []string{}
	for _, e := range evs {
		reasons = append(reasons, e.Kind+"/"+e.Reason)
	}
	if want := []string{"GitRepository/NewArtifact", "Kustomization/Progressing"}; !slices.Equal(reasons, want) {
		t.Fatalf("stored %v, want %v (newest first, once each)", reasons, want)
	}
	// The webhook also updated the resource's status.
	r, err := d.a.db.GetResource(context.Background(), p.resources["GitRepository/demo"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != fluxgate.ResourceReady || r.LastAppliedRevision != "main@sha1:e47f4bc4a77fa7873fceb03fa39601fc4361dc9f" {
		t.Fatalf("GitRepository after NewArtifact: status %s revision %q", r.Status, r.LastAppliedRevision)
	}
	// An object no project manages: 404, nothing stored.
	if code := postWebhook(t, d.b.url, kustomizationEvent(t, "nobody", "x"), []byte(webhookSecret)); code != http.StatusNotFound {
		t.Fatalf("unmanaged object: %d", code)
	}
	if len(count()) != 2 {
		t.Fatal("unmanaged object stored")
	}
}

// BenchmarkRealtimeCrossReplica measures Flux events reaching fluxEvents
// subscribers over real websockets on two replicas sharing PostgreSQL and
// Redis: from the event's publication to the frame read by a subscriber on
// replica A and on replica B (both through Redis: the Redis bus delivers
// to its own replica through Redis too).
//
//   - bus: each event is published on B's bus, as the service does once
//     an event is stored, at 1,000 events/s (FLUXGATE_BENCH_RATE), and at
//     the same moment on the in-memory bus of a third, single-replica
//     server C on the same database: Redis, hub, gqlgen and websocket
//     only. "added" is A's latency minus C's: what going through Redis
//     to another replica adds.
//   - webhook: events POSTed to B's /webhooks/flux (HMAC check,
//     PostgreSQL insert, resource status update, then the same path), at
//     50 events/s (FLUXGATE_BENCH_WEBHOOK_RATE); latency from the POST.
//
// It also reports the rate achieved and the CPU of this process (every
// server and client of the run, background work included) per event.
//
//	DATABASE_URL=... REDIS_URL=... go test ./server -run '^$' -bench RealtimeCrossReplica -benchtime 5000x
func BenchmarkRealtimeCrossReplica(b *testing.B) {
	b.Run("bus", func(b *testing.B) {
		d, projectID, onA, onB := crossReplicaSetup(b)
		c := startSingleReplica(b, storetest.MustOpenDSN(b, d.dsn), "single")
		onC := connect(b, c, protoTransportWS, c.token("alice", "Alice"))
		onC.subscribeFluxEvents("1", projectID, "")
		c.waitActive(b, 1)
		var seq atomic.Int64
		lat := crossReplicaRun(b, envRate(b, "FLUXGATE_BENCH_RATE", 1000), func(i int) error {
			fe := &fluxgate.FluxEvent{Seq: seq.Add(1), ProjectID: projectID, Kind: "Kustomization", Name: "demo",
				Namespace: "flux-system", Reason: "Progressing", Message: fmt.Sprintf("bench %d", i),
				Type: "Normal", Severity: "info", Source: "webhook", Metadata: json.RawMessage(`{}`), CreatedAt: time.Now()}
			ev, err := hub.FluxEventMessage(fe)
			if err != nil {
				return err
			}
			topic := fluxgate.ProjectTopic(projectID)
			if err := c.bus.Publish(context.Background(), topic, ev); err != nil {
				return err
			}
			return d.b.bus.Publish(context.Background(), topic, ev)
		}, onA, onB, onC)
		reportLatency(b, lat[0], "A-")
		reportLatency(b, lat[1], "B-")
		reportLatency(b, lat[2], "inmem-")
		b.ReportMetric(pct(lat[0], 50)-pct(lat[2], 50), "added-p50-µs")
		b.ReportMetric(pct(lat[0], 99)-pct(lat[2], 99), "added-p99-µs")
	})
	b.Run("webhook", func(b *testing.B) {
		d, _, onA, onB := crossReplicaSetup(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		lat := crossReplicaRun(b, envRate(b, "FLUXGATE_BENCH_WEBHOOK_RATE", 50), func(i int) error {
			body := kustomizationEvent(b, "demo", fmt.Sprintf("bench %d", i))
			req, _ := http.NewRequest(http.MethodPost, d.b.url+"/webhooks/flux", bytes.NewReader(body))
			req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(webhook.Sign([]byte(webhookSecret), body)))
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		}, onA, onB)
		reportLatency(b, lat[0], "A-")
		reportLatency(b, lat[1], "B-")
	})
}

func envRate(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var rate int
	if _, err := fmt.Sscan(v, &rate); err != nil || rate <= 0 {
		b.Fatalf("%s=%q", name, v)
	}
	return rate
}

func pct(sorted []time.Duration, p int) float64 {
	return float64(sorted[(len(sorted)-1)*p/100].Microseconds())
}

func reportLatency(b *testing.B, sorted []time.Duration, prefix string) {
	b.ReportMetric(pct(sorted, 50), prefix+"p50-µs")
	b.ReportMetric(pct(sorted, 99), prefix+"p99-µs")
}

// crossReplicaSetup starts two replicas, a project with a Kustomization
// and a fluxEvents subscriber on each replica.
func crossReplicaSetup(b *testing.B) (d *deployment, projectID string, onA, onB *wsClient) {
	d = startDeployment(b)
	alice := d.a.token("alice", "Alice")
	projectID = d.a.createProject(alice, "bench")
	if err := d.a.db.CreateResource(context.Background(), &fluxgate.GitOpsResource{ProjectID: projectID,
		Kind: fluxgate.KindKustomization, Name: "demo", Namespace: "flux-system", Spec: json.RawMessage(`{}`)}); err != nil {
		b.Fatal(err)
	}
	onA, onB = connect(b, d.a, protoTransportWS, alice), connect(b, d.b, protoTransportWS, alice)
	onA.subscribeFluxEvents("1", projectID, "")
	onB.subscribeFluxEvents("1", projectID, "")
	d.a.waitActive(b, 1)
	d.b.waitActive(b, 1)
	return d, projectID, onA, onB
}

// crossReplicaRun publishes b.N events "bench <i>" at rate per second with
// publish (called concurrently, at most 64 at a time) and returns, per
// client, the sorted latencies from publication to the frame read.
func crossReplicaRun(b *testing.B, rate int, publish func(i int) error, clients ...*wsClient) [][]time.Duration {
	n := b.N
	sent := make([]time.Time, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sent[i] = time.Now()
			if err := publish(i); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d events not published: %v", f, n, firstErr.Load())
	}
	var out [][]time.Duration
	for _, c := range clients {
		lat := make([]time.Duration, 0, n)
		for len(lat) < n {
			m := c.next(30 * time.Second)
			if m.Type != "next" {
				b.Fatalf("%s after %d events: %s %s", c.proto, len(lat), m.Type, m.Payload)
			}
			var p struct {
				Data struct{ FluxEvents struct{ Message string } }
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				b.Fatal(err)
			}
			var i int
			if _, err := fmt.Sscanf(p.Data.FluxEvents.Message, "bench %d", &i); err != nil || i < 0 || i >= n {
				b.Fatalf("unexpected event %q", p.Data.FluxEvents.Message)
			}
			lat = append(lat, m.At.Sub(sent[i]))
		}
		slices.Sort(lat)
		out = append(out, lat)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n), "cpu-µs/event")
	return out
}

// processCPU returns the CPU time (user + system) of this process, which
// runs both replicas and the clients.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
