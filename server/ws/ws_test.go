package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fluxgate/fluxgate/server/ws"
)

type userKey struct{}

// newServer serves a tiny schema whose subscription sends
// {"tick":n,"user":…} every 5ms for as long as it runs.
func newServer(t *testing.T, cfg ws.Config) *httptest.Server {
	t.Helper()
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { ok: Boolean! }
		type Subscription { tick: Int! }
	`})
	exec := &graphql.ExecutableSchemaMock{
		SchemaFunc:     func() *ast.Schema { return schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) { return 1, true },
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			if graphql.GetOperationContext(ctx).Operation.Operation != ast.Subscription {
				return graphql.OneShot(&graphql.Response{Data: []byte(`{"ok":true}`)})
			}
			user, _ := ctx.Value(userKey{}).(string)
			n := 0
			return func(ctx context.Context) *graphql.Response {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(5 * time.Millisecond):
					n++
					return &graphql.Response{Data: []byte(fmt.Sprintf(`{"tick":%d,"user":%q}`, n, user))}
				}
			}
		},
	}
	if cfg.Authenticate == nil {
		cfg.Authenticate = func(ctx context.Context, token string) (context.Context, time.Time, error) {
			user, ok := strings.CutPrefix(token, "valid-")
			if !ok {
				return ctx, time.Time{}, errors.New("invalid token")
			}
			return context.WithValue(ctx, userKey{}, user), time.Time{}, nil
		}
	}
	srv := handler.New(exec)
	srv.AddTransport(ws.New(cfg))
	srv.Use(ws.SubscriptionLimit{})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, ts *httptest.Server, subprotocol string, header http.Header) (*client, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{subprotocol}}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), header)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn}, resp, nil
}

func mustDial(t *testing.T, ts *httptest.Server, subprotocol string) *client {
	t.Helper()
	c, _, err := dial(t, ts, subprotocol, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c.conn.Subprotocol() != subprotocol {
		t.Fatalf("negotiated %q, want %q", c.conn.Subprotocol(), subprotocol)
	}
	return c
}

type msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (c *client) send(m any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next message that is not a keepalive.
func (c *client) next() msg {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m msg
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		switch m.Type {
		case "ka", "pong":
			continue
		case "ping":
			c.send(msg{Type: "pong"})
			continue
		}
		return m
	}
}

func (c *client) expect(typ string) msg {
	c.t.Helper()
	m := c.next()
	if m.Type != typ {
		c.t.Fatalf("got %s %s, want %s", m.Type, m.Payload, typ)
	}
	return m
}

// closeCode reads until the server closes and returns its close code.
func (c *client) closeCode(within time.Duration) int {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func payload(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

const subscription = `subscription { tick }`

func TestGraphQLTransportWS(t *testing.T) {
	ts := newServer(t, ws.Config{})
	c := mustDial(t, ts, "graphql-transport-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "valid-ada"})})
	c.expect("connection_ack")
	c.send(msg{ID: "1", Type: "subscribe", Payload: payload(map[string]string{"query": subscription})})
	for want := 1; want <= 3; want++ {
		m := c.expect("next")
		if m.ID != "1" || !strings.Contains(string(m.Payload), fmt.Sprintf(`"tick":%d`, want)) || !strings.Contains(string(m.Payload), `"user":"ada"`) {
			t.Fatalf("got %s", m.Payload)
		}
	}
	c.send(msg{ID: "1", Type: "complete"})
	c.send(msg{ID: "2", Type: "subscribe", Payload: payload(map[string]string{"query": `{ ok }`})})
	for {
		m := c.next()
		if m.ID == "2" {
			if m.Type != "next" || !strings.Contains(string(m.Payload), `"ok":true`) {
				t.Fatalf("query: %s %s", m.Type, m.Payload)
			}
			break
		}
	}
}

func TestLegacyGraphQLWS(t *testing.T) {
	ts := newServer(t, ws.Config{})
	c := mustDial(t, ts, "graphql-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"Authorization": "Bearer valid-bob"})})
	c.expect("connection_ack")
	c.send(msg{ID: "a", Type: "start", Payload: payload(map[string]string{"query": subscription})})
	m := c.expect("data")
	if m.ID != "a" || !strings.Contains(string(m.Payload), `"user":"bob"`) {
		t.Fatalf("got %s", m.Payload)
	}
	c.send(msg{ID: "a", Type: "stop"})
	for c.next().Type != "complete" {
	}
}

func TestBadOrMissingTokenCloses4403(t *testing.T) {
	for name, init := range map[string]map[string]string{
		"bad token":     {"authToken": "stolen"},
		"missing token": {},
		"not bearer":    {"Authorization": "Basic valid-ada"},
	} {
		t.Run(name, func(t *testing.T) {
			ts := newServer(t, ws.Config{})
			c := mustDial(t, ts, "graphql-transport-ws")
			c.send(msg{Type: "connection_init", Payload: payload(init)})
			if code := c.closeCode(5 * time.Second); code != ws.CloseForbidden {
				t.Fatalf("close code %d, want %d", code, ws.CloseForbidden)
			}
		})
	}
}

func TestExpiredTokenClosesSocket(t *testing.T) {
	ts := newServer(t, ws.Config{
		Authenticate: func(ctx context.Context, token string) (context.Context, time.Time, error) {
			return ctx, time.Now().Add(300 * time.Millisecond), nil
		},
	})
	c := mustDial(t, ts, "graphql-transport-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "short-lived"})})
	c.expect("connection_ack")
	c.send(msg{ID: "1", Type: "subscribe", Payload: payload(map[string]string{"query": subscription})})
	c.expect("next")
	start := time.Now()
	c.closeCode(5 * time.Second)
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("socket closed %v after the first event, long after the token expired", waited)
	}
}

func TestOriginAllowList(t *testing.T) {
	ts := newServer(t, ws.Config{AllowedOrigins: []string{"https://app.example.com"}})
	for origin, ok := range map[string]bool{
		"":                         true, // not a browser
		ts.URL:                     true, // same origin
		"https://app.example.com":  true,
		"https://evil.example.com": false,
	} {
		header := http.Header{}
		if origin != "" {
			header.Set("Origin", origin)
		}
		_, resp, err := dial(t, ts, "graphql-transport-ws", header)
		if ok && err != nil {
			t.Fatalf("origin %q refused: %v", origin, err)
		}
		if !ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Fatalf("origin %q accepted (err %v)", origin, err)
		}
	}
}

func TestSubscriptionCap(t *testing.T) {
	ts := newServer(t, ws.Config{MaxSubscriptions: 2})
	c := mustDial(t, ts, "graphql-transport-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "valid-ada"})})
	c.expect("connection_ack")
	for _, id := range []string{"1", "2", "3"} {
		c.send(msg{ID: id, Type: "subscribe", Payload: payload(map[string]string{"query": subscription})})
	}
	// The three start concurrently: two flow, one gets an error.
	flowing, rejected := map[string]bool{}, ""
	for len(flowing) < 2 || rejected == "" {
		m := c.next()
		switch {
		case m.Type == "next" && strings.Contains(string(m.Payload), "too many subscriptions"):
			if rejected != "" || flowing[m.ID] {
				t.Fatalf("%s rejected after %q was, or after it flowed", m.ID, rejected)
			}
			rejected = m.ID
		case m.Type == "next" && strings.Contains(string(m.Payload), `"tick"`):
			if m.ID == rejected {
				t.Fatalf("rejected subscription %s got data", m.ID)
			}
			flowing[m.ID] = true
			if len(flowing) > 2 {
				t.Fatalf("three subscriptions flow: %v", flowing)
			}
		}
	}
	var open string
	for id := range flowing {
		open = id
	}
	// Ending one makes room for another.
	c.send(msg{ID: open, Type: "complete"})
	time.Sleep(50 * time.Millisecond)
	c.send(msg{ID: "4", Type: "subscribe", Payload: payload(map[string]string{"query": subscription})})
	for {
		m := c.next()
		if m.ID == "4" {
			if m.Type != "next" || !strings.Contains(string(m.Payload), `"tick"`) {
				t.Fatalf("fourth subscription got %s %s", m.Type, m.Payload)
			}
			break
		}
	}
}

func TestReadLimit(t *testing.T) {
	ts := newServer(t, ws.Config{ReadLimit: 1024})
	c := mustDial(t, ts, "graphql-transport-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "valid-ada"})})
	c.expect("connection_ack")
	c.send(msg{ID: "1", Type: "subscribe", Payload: payload(map[string]string{"query": "{ ok " + strings.Repeat(" ", 2048) + "}"})})
	if code := c.closeCode(5 * time.Second); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

func TestKeepAlive(t *testing.T) {
	ts := newServer(t, ws.Config{KeepAlive: 200 * time.Millisecond})
	for sub, want := range map[string]string{"graphql-transport-ws": "ping", "graphql-ws": "ka"} {
		c := mustDial(t, ts, sub)
		c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "valid-ada"})})
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		got := 0
		for got < 2 {
			var m msg
			if err := c.conn.ReadJSON(&m); err != nil {
				t.Fatalf("%s: %v", sub, err)
			}
			if m.Type == want {
				got++
				if want == "ping" {
					c.send(msg{Type: "pong"})
				}
			}
		}
	}
}

func TestUnansweredPingsDropThePeer(t *testing.T) {
	ts := newServer(t, ws.Config{KeepAlive: 50 * time.Millisecond})
	c := mustDial(t, ts, "graphql-transport-ws")
	c.send(msg{Type: "connection_init", Payload: payload(map[string]string{"authToken": "valid-ada"})})
	// Never answer pings: the server gives up after two intervals.
	c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var netErr interface{ Timeout() bool }
			if errors.As(err, &netErr) && netErr.Timeout() {
				t.Fatal("the server kept a peer that never answered its pings")
			}
			return
		}
	}
}
