// Package server is fluxgate's HTTP edge: /graphql (POST, GET, websocket),
// webhooks, /metrics, /healthz, /readyz and GraphiQL in development mode.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/graph"
	"github.com/fluxgate/fluxgate/resolvers"
	"github.com/fluxgate/fluxgate/server/ws"
	"github.com/fluxgate/fluxgate/service"
)

// Check is a named readiness check.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config wires the server.
type Config struct {
	Service *service.Service
	Auth    *auth.Authenticator
	Logger  *slog.Logger
	// Registry receives the server's metrics; /metrics serves it. Nil
	// creates a private registry with Go runtime and process collectors.
	Registry *prometheus.Registry
	// DevMode serves GraphiQL at /.
	DevMode bool
	// Ready lists what /readyz checks.
	Ready []Check
	// RequestTimeout bounds a query or mutation (default 30s).
	RequestTimeout time.Duration
	// MaxDepth and MaxComplexity bound an operation (defaults 12 and 2000).
	MaxDepth      int
	MaxComplexity int
	// Routes adds handlers (e.g. /webhooks/flux).
	Routes map[string]http.Handler
	// AllowedOrigins lists browser origins allowed to open websockets
	// besides the server's own ("*": any).
	AllowedOrigins []string
	// MaxSubscriptions caps subscriptions per websocket (default 100).
	MaxSubscriptions int
	// WebsocketWriteTimeout bounds one write to a websocket client
	// (default 10s); a client that reads nothing for that long is
	// disconnected.
	WebsocketWriteTimeout time.Duration
}

// Server is fluxgate's HTTP server.
type Server struct {
	cfg     Config
	handler http.Handler
	http    *http.Server
	baseCtx context.Context
	cancel  context.CancelFunc
	ln      net.Listener
}

// New builds the server's handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = 12
	}
	if cfg.MaxComplexity == 0 {
		cfg.MaxComplexity = 2000
	}
	s := &Server{cfg: cfg}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	m := newMetrics(cfg.Registry)

	gql := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{Service: cfg.Service}}))
	gql.AddTransport(ws.New(ws.Config{
		Authenticate:     s.authenticateSocket,
		AllowedOrigins:   cfg.AllowedOrigins,
		MaxSubscriptions: cfg.MaxSubscriptions,
		WriteTimeout:     cfg.WebsocketWriteTimeout,
		ErrorFunc: func(ctx context.Context, err error) {
			cfg.Logger.DebugContext(ctx, "websocket", "err", err)
		},
	}))
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.GET{})
	gql.AddTransport(transport.POST{})
	gql.Use(extension.Introspection{})
	gql.Use(depthLimit{max: cfg.MaxDepth})
	gql.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	gql.Use(operationMetrics{m: m})
	gql.Use(ws.SubscriptionLimit{})
	gql.Use(streamErrors{})
	gql.SetErrorPresenter(errorPresenter(cfg.Logger))
	gql.SetRecoverFunc(recoverFunc(cfg.Logger))

	mux := http.NewServeMux()
	graphqlHandler := s.authenticate(resolvers.LoaderMiddleware(cfg.Service, s.timeout(gql)))
	mux.Handle("/graphql", m.instrument("/graphql", limitBody(graphQLOverHTTP(graphqlHandler))))
	mux.Handle("GET /healthz", m.instrument("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("GET /readyz", m.instrument("/readyz", http.HandlerFunc(s.readyz)))
	mux.Handle("GET /metrics", metricsHandler(cfg.Registry))
	for pattern, h := range cfg.Routes {
		mux.Handle(pattern, m.instrument(pattern, h))
	}
	if cfg.DevMode {
		mux.Handle("GET /{$}", playground.Handler("fluxgate", "/graphql"))
	}
	s.handler = s.requestID(mux)
	// Built here, not in Serve, so that Shutdown never races with Serve.
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	// net/http's Shutdown does not wait for hijacked (websocket)
	// connections: cancelling the base context ends their subscriptions.
	s.http.RegisterOnShutdown(s.cancel)
	return s
}

// Handler returns the root handler (tests use it with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds addr (":0" picks a free port).
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown. Listen must have been called.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, ends subscriptions and waits for requests.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.cancel()
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// requestID gives every request an id (X-Request-Id if the client sent a
// sane one) and logs the request.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := fluxgate.NewContextWithRequestID(r.Context(), id)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if r.URL.Path != "/healthz" && r.URL.Path != "/metrics" {
			s.cfg.Logger.InfoContext(ctx, "request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", sw.code, "duration_ms", time.Since(start).Milliseconds())
		}
	})
}

// authenticate puts the user of a valid bearer token in the context. No
// token leaves the request anonymous (resolvers answer UNAUTHENTICATED);
// a bad token is refused with 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" || isUpgrade(r) {
			// Websocket clients authenticate in connection_init.
			next.ServeHTTP(w, r)
			return
		}
		res, err := s.cfg.Auth.Authenticate(r.Context(), h)
		if err != nil {
			code := http.StatusUnauthorized
			if fluxgate.ErrorCode(err) == fluxgate.EINTERNAL {
				s.cfg.Logger.ErrorContext(r.Context(), "authenticate", "request_id", fluxgate.RequestIDFromContext(r.Context()), "err", err)
				code = http.StatusInternalServerError
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="fluxgate"`)
			writeRequestError(w, code, fluxgate.ErrorMessage(err), extensionCodes[fluxgate.ErrorCode(err)])
			return
		}
		next.ServeHTTP(w, r.WithContext(fluxgate.NewContextWithUser(r.Context(), res.User)))
	})
}

// authenticateSocket checks a websocket's connection_init token; the
// connection closes with 4403 on failure and when the token expires.
func (s *Server) authenticateSocket(ctx context.Context, token string) (context.Context, time.Time, error) {
	res, err := s.cfg.Auth.Authenticate(ctx, token)
	if err != nil {
		return ctx, time.Time{}, err
	}
	ctx = fluxgate.NewContextWithUser(ctx, res.User)
	return resolvers.WithLoaders(ctx, s.cfg.Service), res.ExpiresAt, nil
}

// timeout bounds queries and mutations (not websocket subscriptions).
func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for _, c := range s.cfg.Ready {
		if err := c.Check(ctx); err != nil {
			status[c.Name], code = err.Error(), http.StatusServiceUnavailable
		} else {
			status[c.Name] = "ok"
		}
	}
	writeJSON(w, code, map[string]any{"ready": code == http.StatusOK, "checks": status})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// streamErrors ends a subscription whose event stream ended abnormally (the
// subscriber fell behind and was cut off, a replay failed) with an error
// message saying why, instead of the "complete" of a normal end: the
// client knows to subscribe again with its last cursor.
type streamErrors struct{}

var (
	_ graphql.HandlerExtension     = streamErrors{}
	_ graphql.OperationInterceptor = streamErrors{}
)

func (streamErrors) ExtensionName() string                   { return "StreamErrors" }
func (streamErrors) Validate(graphql.ExecutableSchema) error { return nil }

func (streamErrors) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	ctx = fluxgate.NewContextWithStreamErrorFunc(ctx, func(err error) {
		transport.AddSubscriptionError(ctx, &gqlerror.Error{
			Message:    err.Error() + "; subscribe again, with the cursor of the last event received where there is one",
			Extensions: map[string]any{"code": extensionCodes[fluxgate.EUNAVAILABLE]},
		})
	})
	return next(ctx)
}
