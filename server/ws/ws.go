// Package ws is the GraphQL websocket transport of fluxgate: gqlgen's
// transport.Websocket running on github.com/gorilla/websocket, speaking
// both graphql-transport-ws (the graphql-ws npm client) and the legacy
// graphql-ws (subscriptions-transport-ws).
//
// It adds what a public endpoint needs: authentication in
// connection_init (`{"authToken": "…"}` or `{"Authorization": "Bearer …"}`;
// a bad or missing token closes with 4403), closing the socket when the
// token expires, an origin allow-list, a read limit, keepalive pings that
// detect dead peers, a cap on subscriptions per connection and small
// per-connection buffers.
//
// Wire it with both halves:
//
//	srv.AddTransport(ws.New(cfg))
//	srv.Use(ws.SubscriptionLimit{})
package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
)

// CloseForbidden is the close code of a connection whose connection_init
// carried no valid token.
const CloseForbidden = 4403

// Authenticator checks a connection's token and returns the context the
// connection's operations run in (carrying the user) and when the token
// expires (zero: never). An error closes the connection with 4403.
type Authenticator func(ctx context.Context, token string) (context.Context, time.Time, error)

// Config configures the transport. Zero values take defaults.
type Config struct {
	Authenticate Authenticator // required
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed to connect besides the server's own; "*" allows any.
	// Requests without an Origin header (not from a browser) are allowed.
	AllowedOrigins []string
	// ReadLimit bounds one client message in bytes (default 64 KiB).
	ReadLimit int64
	// KeepAlive is the interval of protocol pings (graphql-transport-ws:
	// a peer that does not answer within two intervals is dropped) and
	// "ka" messages (graphql-ws). Default 15s.
	KeepAlive time.Duration
	// InitTimeout bounds the wait for connection_init (default 10s).
	InitTimeout time.Duration
	// WriteTimeout bounds one write to the client (default 10s).
	WriteTimeout time.Duration
	// MaxSubscriptions caps concurrent subscriptions per connection
	// (default 100), enforced by the SubscriptionLimit extension.
	MaxSubscriptions int
	// ReadBufferSize and WriteBufferSize size the socket buffers (default
	// 1 KiB and 4 KiB; write buffers are pooled, held only while writing).
	ReadBufferSize, WriteBufferSize int
	// ErrorFunc, if set, is told about read and write errors.
	ErrorFunc func(ctx context.Context, err error)
}

// New returns the websocket transport.
func New(cfg Config) transport.Websocket {
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 64 << 10
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = 100
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 1 << 10
	}
	if cfg.WriteBufferSize <= 0 {
		cfg.WriteBufferSize = 4 << 10
	}
	readLimit := cfg.ReadLimit
	return transport.Websocket{
		Implementation: &gorillaImplementation{
			upgrader: websocket.Upgrader{
				HandshakeTimeout: cfg.InitTimeout,
				ReadBufferSize:   cfg.ReadBufferSize,
				WriteBufferSize:  cfg.WriteBufferSize,
				WriteBufferPool:  &sync.Pool{},
				CheckOrigin:      originChecker(cfg.AllowedOrigins),
			},
			writeTimeout: cfg.WriteTimeout,
		},
		InitFunc:              initFunc(cfg),
		InitTimeout:           cfg.InitTimeout,
		KeepAlivePingInterval: cfg.KeepAlive,
		PingPongInterval:      cfg.KeepAlive,
		PayloadReadLimit:      &readLimit,
		ErrorFunc: func(ctx context.Context, err error) {
			if cfg.ErrorFunc != nil {
				cfg.ErrorFunc(ctx, err)
			}
		},
	}
}

// TokenFromInitPayload returns the token of a connection_init payload:
// authToken, or the Authorization value without its Bearer prefix.
func TokenFromInitPayload(p transport.InitPayload) string {
	if t := p.GetString("authToken"); t != "" {
		return t
	}
	scheme, token, ok := strings.Cut(p.Authorization(), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// errNoToken is returned to a client whose connection_init has no token.
var errNoToken = errors.New("missing auth token in connection_init")

func initFunc(cfg Config) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		forbidden := transport.WithWebsocketCloseCode(ctx, CloseForbidden)
		token := TokenFromInitPayload(p)
		if token == "" {
			return transport.AppendCloseReason(forbidden, "unauthenticated"), nil, errNoToken
		}
		if cfg.Authenticate == nil {
			return transport.AppendCloseReason(forbidden, "unauthenticated"), nil, errors.New("no authenticator configured")
		}
		authed, expires, err := cfg.Authenticate(ctx, token)
		if err != nil {
			return transport.AppendCloseReason(forbidden, "unauthenticated"), nil, fmt.Errorf("authenticate: %w", err)
		}
		if !expires.IsZero() {
			// gqlgen closes the socket when this context ends.
			expiring, cancel := context.WithDeadline(authed, expires)
			context.AfterFunc(ctx, cancel) // the connection ended first
			authed = transport.AppendCloseReason(expiring, "token expired")
		}
		authed = context.WithValue(authed, limitKey{}, &connLimit{max: cfg.MaxSubscriptions})
		return authed, nil, nil
	}
}

// originChecker allows requests without Origin, from the request's own
// host, or from an allowed origin.
func originChecker(allowed []string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		return slices.ContainsFunc(allowed, func(a string) bool {
			return a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin)
		})
	}
}

type limitKey struct{}

type connLimit struct {
	max    int
	active atomic.Int64
}

// SubscriptionLimit is the gqlgen extension that caps the concurrent
// subscriptions of each websocket connection at Config.MaxSubscriptions.
// A subscription over the cap gets an error and nothing else.
type SubscriptionLimit struct{}

var (
	_ graphql.HandlerExtension     = SubscriptionLimit{}
	_ graphql.OperationInterceptor = SubscriptionLimit{}
)

func (SubscriptionLimit) ExtensionName() string                          { return "WebsocketSubscriptionLimit" }
func (SubscriptionLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

// InterceptOperation counts the subscriptions of the operation's
// connection while they run.
func (SubscriptionLimit) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	limit, ok := ctx.Value(limitKey{}).(*connLimit)
	oc := graphql.GetOperationContext(ctx)
	if !ok || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	if limit.active.Add(1) > int64(limit.max) {
		limit.active.Add(-1)
		return graphql.OneShot(graphql.ErrorResponse(ctx, "too many subscriptions on this connection (at most %d)", limit.max))
	}
	// The operation's context ends with the subscription.
	context.AfterFunc(ctx, func() { limit.active.Add(-1) })
	return next(ctx)
}

// gorillaImplementation adapts gorilla/websocket to gqlgen's transport.
type gorillaImplementation struct {
	upgrader     websocket.Upgrader
	writeTimeout time.Duration
}

var _ transport.WebsocketImplementation = (*gorillaImplementation)(nil)

func (g *gorillaImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	up := g.upgrader // a copy: Subprotocols are per call
	up.Subprotocols = opts.Subprotocols
	conn, err := up.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, err
	}
	return &gorillaConn{conn: conn, writeTimeout: g.writeTimeout}, nil
}

type gorillaConn struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	mu           sync.Mutex // one writer at a time
}

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
)

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	mt, r, err := c.conn.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return mt, nil, transport.ErrWebsocketClosed
	}
	return mt, r, err
}

func (c *gorillaConn) WriteJSON(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	if err := c.conn.WriteJSON(v); err != nil {
		// gorilla's writer is unusable after a failed write (a client that
		// stopped reading for WriteTimeout, a broken connection): close
		// the socket, so that the read loop ends and the connection's
		// subscriptions stop, rather than keep a connection that looks
		// open but never sends again.
		_ = c.conn.Close()
		return err
	}
	return nil
}

func (c *gorillaConn) WriteClose(code int, msg string) error {
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(c.writeTimeout))
}

func (c *gorillaConn) Close() error                      { return c.conn.Close() }
func (c *gorillaConn) Subprotocol() string               { return c.conn.Subprotocol() }
func (c *gorillaConn) SetReadLimit(limit int64)          { c.conn.SetReadLimit(limit) }
func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }
