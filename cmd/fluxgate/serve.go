package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"k8s.io/klog/v2"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
	"github.com/fluxgate/fluxgate/redis"
	"github.com/fluxgate/fluxgate/server"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/webhook"
)

// Main is the serve command: configuration, the adapters it builds and the
// server, closed in order.
type Main struct {
	Config Config
	stdout io.Writer
	stderr io.Writer

	logger  *slog.Logger
	db      *store.DB
	server  *server.Server
	closers []func(context.Context) error
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr}
}

// ParseFlags reads serve's flags and environment.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("fluxgate serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	m.Config.bindServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// Open builds the adapters and the server and binds the listen address.
func (m *Main) Open(ctx context.Context) error {
	c := &m.Config
	logger, err := c.logger(m.stderr)
	if err != nil {
		return err
	}
	m.logger = logger
	// client-go logs through klog: send it to the same structured log.
	klog.SetSlogLogger(logger)
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	if m.db, err = store.Open(ctx, c.databaseURL()); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	m.closers = append(m.closers, func(context.Context) error { return m.db.Close() })
	if err := m.db.Migrate(ctx, "up", io.Discard); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	bus, presence, err := m.openBus(ctx)
	if err != nil {
		return err
	}
	h := hub.New(bus, hub.Options{Logger: logger})
	clusters := &clusterSource{}
	opts := []service.Option{
		service.WithLogger(logger), service.WithPublisher(bus), service.WithRealtime(h, presence),
		service.WithCluster(clusters), service.WithAdmins(splitList(c.Admins)...),
	}
	if c.DevMode() {
		opts = append(opts, service.WithAdmins(auth.DevSubject))
	}
	if c.FluxBundle != "" {
		bundle, err := os.ReadFile(c.FluxBundle)
		if err != nil {
			return fmt.Errorf("flux bundle: %w", err)
		}
		opts = append(opts, service.WithFluxBundle(bundle))
	}
	gitOpts, err := m.openGit()
	if err != nil {
		return err
	}
	svc := service.New(m.db, append(opts, gitOpts...)...)

	secret, devToken := []byte(c.JWTSecret), ""
	if c.DevMode() {
		s, err := persistentSecret(c.DataDir, "dev-jwt-secret")
		if err != nil {
			return err
		}
		secret = []byte(s)
		if devToken = c.DevToken; devToken == "" {
			if devToken, err = persistentSecret(c.DataDir, "dev-token"); err != nil {
				return err
			}
		}
	}
	authn := auth.New(secret, devToken, svc)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.openCluster(ctx, clusters, svc, reg); err != nil {
		return err
	}

	if c.DevMode() && c.SeedDemo {
		if err := seedDemo(ctx, svc, c.DataDir); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
	}

	routes := map[string]http.Handler{}
	webhookSecret := c.WebhookSecret
	if webhookSecret == "" && c.DevMode() {
		if webhookSecret, err = persistentSecret(c.DataDir, "webhook-secret"); err != nil {
			return err
		}
	}
	if webhookSecret != "" {
		routes["/webhooks/flux"] = webhook.NewHandler(webhook.Config{
			Secrets: []webhook.Secret{{ID: "default", Value: []byte(webhookSecret)}},
			Sink:    svc,
			Logger:  logger,
		})
	} else {
		logger.Warn("no webhook secret configured: POST /webhooks/flux is off (set FLUXGATE_WEBHOOK_SECRET)")
	}

	m.server = server.New(server.Config{
		Service:        svc,
		Auth:           authn,
		Logger:         logger,
		Registry:       reg,
		DevMode:        c.DevMode(),
		Ready:          []server.Check{{Name: "database", Check: m.db.Ping}, {Name: "cluster", Check: clusters.ready}},
		Routes:         routes,
		AllowedOrigins: splitList(c.AllowedOrigins),
	})
	if err := m.server.Listen(c.Addr); err != nil {
		return err
	}
	logger.Info("fluxgate listening", "addr", m.server.Addr(), "version", Version, "database", m.db.Dialect(), "dev_mode", c.DevMode())
	if c.DevMode() {
		fmt.Fprintf(m.stdout, "\nfluxgate is running in development mode at http://%s/\n", m.server.Addr())
		fmt.Fprintf(m.stdout, "development token (Authorization: Bearer ...):\n  %s\n", devToken)
		fmt.Fprintf(m.stdout, "try:\n  curl -s http://%s/graphql -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"query\":\"{ projects { edges { node { slug name } } } }\"}'\n\n", m.server.Addr(), devToken)
	}
	return nil
}

// openBus returns the event bus and presence store: Redis when configured,
// in-memory otherwise.
func (m *Main) openBus(ctx context.Context) (fluxgate.EventBus, fluxgate.PresenceStore, error) {
	if m.Config.RedisURL == "" {
		bus := inmem.NewBus(0)
		m.closers = append(m.closers, func(context.Context) error { return bus.Close() })
		return bus, inmem.NewPresence(bus, inmem.PresenceOptions{}), nil
	}
	opt, err := goredis.ParseURL(m.Config.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("redis url: %w", err)
	}
	opt.ClientName = "fluxgate"
	client := goredis.NewClient(opt)
	// Redis down pauses live updates; it never stops queries and
	// mutations, so fluxgate starts anyway and the bus reconnects.
	if err := client.Ping(ctx).Err(); err != nil {
		m.logger.Warn("redis is not reachable yet: live updates wait for it", "err", err)
	}
	m.closers = append(m.closers, func(context.Context) error { return client.Close() })
	bus := redis.NewBus(client, redis.BusOptions{Logger: m.logger})
	m.closers = append(m.closers, func(context.Context) error { return bus.Close() })
	return bus, redis.NewPresence(client, bus, redis.PresenceOptions{}), nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Serve opens everything, serves until ctx is done, then closes in order.
func (m *Main) Serve(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		_ = m.Close(context.Background())
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- m.server.Serve() }()
	select {
	case err := <-errc:
		_ = m.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	m.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return m.Close(shutdownCtx)
}

// Close stops the server, then closes adapters in reverse order of opening.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.server != nil {
		errs = append(errs, m.server.Shutdown(ctx))
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i](ctx))
	}
	m.closers = nil
	return errors.Join(errs...)
}
