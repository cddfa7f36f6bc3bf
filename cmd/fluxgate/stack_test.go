package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/localcluster"
	"github.com/fluxgate/fluxgate/service"
)

// stack is `fluxgate serve` on its embedded defaults (SQLite, in-memory
// bus, development auth, the local cluster with the real Flux
// controllers), driven over real HTTP and websocket connections.
type stack struct {
	t        testing.TB
	m        *Main
	out      *syncBuffer
	dataDir  string
	url      string // .../graphql
	devToken string
	cancel   context.CancelFunc
	served   chan error
	closed   bool
}

const stackDevToken = "test-dev-token"

// startStack runs fluxgate as a newcomer would (no configuration but a data
// dir) and stops it when the test ends.
func startStack(t testing.TB) *stack {
	t.Helper()
	return startStackIn(t, t.TempDir())
}

// startStackIn is startStack on a given data dir (to start fluxgate again
// on what an earlier run left).
func startStackIn(t testing.TB, dataDir string) *stack {
	t.Helper()
	t.Setenv("FLUXGATE_DATA_DIR", dataDir)
	t.Setenv("FLUXGATE_ADDR", "127.0.0.1:0")
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "FLUXGATE_JWT_SECRET", "KUBECONFIG", "KUBERNETES_SERVICE_HOST"} {
		t.Setenv(k, "")
	}
	s := &stack{t: t, out: &syncBuffer{}, dataDir: dataDir, devToken: stackDevToken, served: make(chan error, 1)}
	s.m = NewMain(s.out, s.out)
	if err := s.m.ParseFlags([]string{"--dev-token", stackDevToken, "--log-format", "text"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.m.Open(ctx); err != nil {
		cancel()
		t.Fatalf("open: %v\n%s", err, s.out.String())
	}
	go func() { s.served <- s.m.server.Serve() }()
	s.url = "http://" + s.m.server.Addr() + "/graphql"
	t.Cleanup(func() {
		if !s.closed {
			s.close()
		}
		if t.Failed() {
			t.Logf("fluxgate output:\n%s", tail(s.out.String(), 200))
		}
	})
	return s
}

// close stops fluxgate and waits for the server to return.
func (s *stack) close() {
	s.t.Helper()
	s.closed = true
	s.cancel()
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := s.m.Close(ctx); err != nil {
		s.t.Errorf("close: %v", err)
	}
	<-s.served
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// token issues a bearer token for another user, signed with the
// development secret fluxgate keeps in its data dir.
func (s *stack) token(subject, name string) string {
	s.t.Helper()
	secret, err := os.ReadFile(filepath.Join(s.dataDir, "dev-jwt-secret"))
	if err != nil {
		s.t.Fatal(err)
	}
	tok, err := auth.Issue(bytes.TrimSpace(secret), service.Identity{Subject: subject, Name: name, Email: subject + "@example.com"}, time.Hour, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// gqlError is one GraphQL error with its domain code.
type gqlError struct {
	Message    string
	Extensions struct{ Code string }
}

// do runs a query or mutation and decodes data into v; it returns the
// GraphQL errors.
func (s *stack) do(token, query string, vars map[string]any, v any) []gqlError {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []gqlError
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		s.t.Fatal(err)
	}
	if v != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, v); err != nil {
			s.t.Fatal(err)
		}
	}
	return r.Errors
}

// must is do that fails the test on any error.
func (s *stack) must(token, query string, vars map[string]any, v any) {
	s.t.Helper()
	if errs := s.do(token, query, vars, v); len(errs) > 0 {
		s.t.Fatalf("%s: %+v", strings.Join(strings.Fields(query), " "), errs)
	}
}

// waitDemoReady waits until the demo project's two GitRepositories and two
// Kustomizations are READY through the real Flux controllers and returns
// the project's id.
func (s *stack) waitDemoReady() string {
	s.t.Helper()
	var p struct{ Project struct{ ID string } }
	s.must(s.devToken, `{ project(slug: "demo") { id } }`, nil, &p)
	deadline := time.Now().Add(5 * time.Minute)
	var ready []string
	for time.Now().Before(deadline) {
		var res struct {
			GitopsResources struct {
				Edges []struct {
					Node struct{ Kind, Name, Status string }
				}
			}
		}
		s.must(s.devToken, `query($p: ID!) { gitopsResources(projectId: $p) { edges { node { kind name status } } } }`,
			map[string]any{"p": p.Project.ID}, &res)
		ready = ready[:0]
		for _, e := range res.GitopsResources.Edges {
			if e.Node.Status == "READY" {
				ready = append(ready, e.Node.Kind+"/"+e.Node.Name)
			}
		}
		if len(res.GitopsResources.Edges) == 4 && len(ready) == 4 {
			return p.Project.ID
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("demo resources READY: %v, want 2 GitRepositories and 2 Kustomizations", ready)
	return ""
}

// clusterStatus is the local cluster's status file (processes, kubeconfig).
func (s *stack) clusterStatus() localcluster.Status {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "cluster", "status.json"))
	if err != nil {
		s.t.Fatalf("cluster status: %v", err)
	}
	var st localcluster.Status
	if err := json.Unmarshal(b, &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// wsMsg is one graphql-transport-ws message, stamped when it arrived.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
	At      time.Time       `json:"-"`
}

// subscription is one GraphQL subscription on its own websocket
// connection (graphql-transport-ws), read in the background.
type subscription struct {
	t    testing.TB
	conn *websocket.Conn
	wmu  sync.Mutex
	msgs chan wsMsg
}

// subscribe opens a websocket, authenticates with token and starts query.
func (s *stack) subscribe(token, query string, vars map[string]any) *subscription {
	s.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(s.url, "http"), nil)
	if err != nil {
		s.t.Fatalf("dial websocket: %v", err)
	}
	sub := &subscription{t: s.t, conn: conn, msgs: make(chan wsMsg, 1024)}
	s.t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(sub.msgs)
		for {
			var m wsMsg
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			m.At = time.Now()
			switch m.Type {
			case "ping":
				sub.send(wsMsg{Type: "pong"})
			case "pong", "ka":
			default:
				sub.msgs <- m
			}
		}
	}()
	sub.send(wsMsg{Type: "connection_init", Payload: mustJSON(s.t, map[string]any{"authToken": token})})
	if m := sub.next(10 * time.Second); m.Type != "connection_ack" {
		s.t.Fatalf("websocket: got %s %s, want connection_ack", m.Type, m.Payload)
	}
	sub.send(wsMsg{ID: "1", Type: "subscribe", Payload: mustJSON(s.t, map[string]any{"query": query, "variables": vars})})
	return sub
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (sub *subscription) send(m wsMsg) {
	sub.wmu.Lock()
	defer sub.wmu.Unlock()
	_ = sub.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := sub.conn.WriteJSON(m); err != nil {
		sub.t.Errorf("websocket write: %v", err)
	}
}

func (sub *subscription) next(timeout time.Duration) wsMsg {
	sub.t.Helper()
	select {
	case m, ok := <-sub.msgs:
		if !ok {
			sub.t.Fatal("websocket closed")
		}
		return m
	case <-time.After(timeout):
		sub.t.Fatalf("no websocket message within %s", timeout)
	}
	return wsMsg{}
}

// result returns the next result's data and when it arrived, or done when
// the server completed the subscription. GraphQL errors fail the test.
func (sub *subscription) result(timeout time.Duration) (data json.RawMessage, at time.Time, done bool) {
	sub.t.Helper()
	m := sub.next(timeout)
	switch m.Type {
	case "complete":
		return nil, m.At, true
	case "next":
		var p struct {
			Data   json.RawMessage
			Errors []gqlError
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			sub.t.Fatal(err)
		}
		if len(p.Errors) > 0 {
			sub.t.Fatalf("subscription error: %+v", p.Errors)
		}
		return p.Data, m.At, false
	}
	sub.t.Fatalf("subscription: %s %s", m.Type, m.Payload)
	return nil, m.At, true
}
