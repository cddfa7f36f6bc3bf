package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is everything fluxgate reads from flags and the environment. It
// is read once, here; nothing else looks at os.Getenv.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	RedisURL    string
	JWTSecret   string
	DevToken    string
	LogLevel    string
	LogFormat   string
	SeedDemo    bool
	Kubeconfig  string
	KubeContext string
	// WebhookSecret authenticates notification-controller's webhook
	// (HMAC key of a generic-hmac Provider, or bearer token of a generic one).
	WebhookSecret  string
	AllowedOrigins string
	// LocalCluster starts the embedded local cluster when no cluster is
	// configured.
	LocalCluster   bool
	LeaseNamespace string
	Admins         string
	FluxBundle     string
	// CredentialKey seals repository push credentials at rest (base64 or
	// hex, 16/24/32 bytes).
	CredentialKey string
}

// envOr returns the environment variable or def.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "fluxgate")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "fluxgate")
	}
	return ".fluxgate"
}

// bindServeFlags registers serve's flags with environment defaults.
func (c *Config) bindServeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", envOr("FLUXGATE_ADDR", "127.0.0.1:8080"), "listen address (FLUXGATE_ADDR)")
	c.bindStoreFlags(fs)
	fs.StringVar(&c.RedisURL, "redis-url", envOr("REDIS_URL", ""), "Redis URL for the event bus and presence; empty: in-memory (REDIS_URL)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", envOr("FLUXGATE_JWT_SECRET", ""), "HS256 secret for bearer JWTs; empty: development mode (FLUXGATE_JWT_SECRET)")
	fs.StringVar(&c.DevToken, "dev-token", envOr("FLUXGATE_DEV_TOKEN", ""), "fixed development token in development mode; empty: generated once into the data dir (FLUXGATE_DEV_TOKEN)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", envOr("FLUXGATE_WEBHOOK_SECRET", ""), "secret of POST /webhooks/flux (HMAC key or bearer token); empty: generated once into the data dir in development mode, webhook off otherwise (FLUXGATE_WEBHOOK_SECRET)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", envOr("FLUXGATE_ALLOWED_ORIGINS", ""), "comma-separated browser origins allowed to open websockets besides the server's own (FLUXGATE_ALLOWED_ORIGINS)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("FLUXGATE_LOG_LEVEL", "info"), "debug, info, warn or error (FLUXGATE_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("FLUXGATE_LOG_FORMAT", "json"), "json or text (FLUXGATE_LOG_FORMAT)")
	fs.BoolVar(&c.SeedDemo, "seed-demo", envOr("FLUXGATE_SEED_DEMO", "true") == "true", "seed the demo project once in development mode (FLUXGATE_SEED_DEMO)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", envOr("KUBECONFIG", ""), "kubeconfig of the cluster to drive; empty: in-cluster config, else the local cluster (KUBECONFIG)")
	fs.BoolVar(&c.LocalCluster, "local-cluster", envOr("FLUXGATE_LOCAL_CLUSTER", "true") == "true", "start the embedded local cluster when no kubeconfig is configured (FLUXGATE_LOCAL_CLUSTER)")
	fs.StringVar(&c.LeaseNamespace, "lease-namespace", envOr("FLUXGATE_LEASE_NAMESPACE", "default"), "namespace of the Lease that picks the replica running the cluster watcher (FLUXGATE_LEASE_NAMESPACE)")
	fs.StringVar(&c.CredentialKey, "credential-key", envOr("FLUXGATE_CREDENTIAL_KEY", ""), "AES key (base64 or hex, 16/24/32 bytes) sealing repository push credentials; empty: generated once into the data dir in development mode (FLUXGATE_CREDENTIAL_KEY)")
	fs.StringVar(&c.Admins, "admins", envOr("FLUXGATE_ADMINS", ""), "comma-separated token subjects allowed cluster-wide operations such as installFlux (FLUXGATE_ADMINS)")
	fs.StringVar(&c.FluxBundle, "flux-bundle", envOr("FLUXGATE_FLUX_BUNDLE", ""), "path of a Flux install bundle (flux install --export) that installFlux applies by default (FLUXGATE_FLUX_BUNDLE)")
	fs.StringVar(&c.KubeContext, "kube-context", envOr("FLUXGATE_KUBE_CONTEXT", ""), "kubeconfig context (FLUXGATE_KUBE_CONTEXT)")
}

func (c *Config) bindStoreFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", envOr("FLUXGATE_DATA_DIR", defaultDataDir()), "directory for the SQLite database, Git caches and local cluster state (FLUXGATE_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", envOr("DATABASE_URL", ""), "postgres:// URL; empty: SQLite in the data dir (DATABASE_URL)")
}

// DevMode reports whether no JWT secret is configured.
func (c *Config) DevMode() bool { return c.JWTSecret == "" }

// databaseURL returns the configured database or the SQLite default.
func (c *Config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + filepath.Join(c.DataDir, "fluxgate.db")
}

func (c *Config) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format must be json or text, got %q", c.LogFormat)
}

// persistentSecret returns the content of name in the data dir, creating
// it with 32 random bytes (hex) on first use.
func persistentSecret(dataDir, name string) (string, error) {
	p := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return v, nil
}

// parseTTL parses a token lifetime.
func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("ttl must be a positive duration such as 24h, got %q", s)
	}
	return d, nil
}
