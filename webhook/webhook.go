// Package webhook receives the events Flux's notification-controller
// pushes to a `generic` or `generic-hmac` Provider at POST /webhooks/flux,
// authenticates them, turns them into fluxgate.FluxEvents and hands them to
// a Sink (the service that maps them to a project, stores and publishes).
//
// Authentication, per configured secret:
//   - generic-hmac: the Provider's secret `token` is the HMAC-SHA256 key;
//     notification-controller sends `X-Signature: sha256=<hex>` computed
//     over the exact request body.
//   - generic: the Provider's secret `headers` carry
//     `Authorization: Bearer <token>`.
//
// Responses: 202 accepted (also for a duplicate delivery; the Sink stores
// it once by DedupKey), 400 malformed payload, 401 bad or missing
// credentials (nothing reaches the Sink), 405 not POST, 413 body too large,
// 404/422/503/500 from the Sink's error code. notification-controller
// retries 5xx responses.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"

	"github.com/fluxgate/fluxgate"
)

// Sink takes the events the handler accepted. It returns ENOTFOUND when no
// project owns the involved object, EINVALID when the event cannot be
// recorded; other errors make notification-controller retry.
type Sink interface {
	HandleFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) error
}

// Secret is one accepted credential: the HMAC key of a generic-hmac
// Provider and the bearer token of a generic one.
type Secret struct {
	ID    string // names the secret in logs and for SecretIDFromContext; not secret
	Value []byte
}

// DefaultMaxBodyBytes bounds a request body unless Config says otherwise.
// notification-controller caps messages at 39,000 characters.
const DefaultMaxBodyBytes = 256 << 10

// Config configures a Handler.
type Config struct {
	Secrets      []Secret
	Sink         Sink
	MaxBodyBytes int64            // DefaultMaxBodyBytes if 0
	Logger       *slog.Logger     // slog.Default() if nil
	Now          func() time.Time // time.Now if nil; used when a payload has no timestamp
}

// Handler is the http.Handler of POST /webhooks/flux.
type Handler struct {
	cfg Config
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a handler; with no secrets it refuses every request.
func NewHandler(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg}
}

type contextKey struct{}

// SecretIDFromContext returns the ID of the secret that authenticated the
// request, in the context the Sink receives.
func SecretIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.reply(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.reply(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.reply(w, http.StatusBadRequest, "cannot read body")
		return
	}

	secretID, ok := h.authenticate(r, body)
	if !ok {
		h.cfg.Logger.Warn("flux webhook: rejected credentials", "remote", r.RemoteAddr,
			"signature", r.Header.Get("X-Signature") != "", "bearer", r.Header.Get("Authorization") != "")
		h.reply(w, http.StatusUnauthorized, "bad or missing credentials")
		return
	}

	ev, err := Parse(body, h.cfg.Now())
	if err != nil {
		h.reply(w, http.StatusBadRequest, err.Error())
		return
	}

	ctx := context.WithValue(r.Context(), contextKey{}, secretID)
	if err := h.cfg.Sink.HandleFluxEvent(ctx, ev); err != nil {
		status := http.StatusInternalServerError
		switch fluxgate.ErrorCode(err) {
		case fluxgate.ENOTFOUND:
			status = http.StatusNotFound
		case fluxgate.EINVALID:
			status = http.StatusUnprocessableEntity
		case fluxgate.EUNAVAILABLE:
			status = http.StatusServiceUnavailable
		}
		h.cfg.Logger.Log(r.Context(), level(status), "flux webhook: event not recorded", "kind", ev.Kind,
			"namespace", ev.Namespace, "name", ev.Name, "reason", ev.Reason, "secret", secretID, "error", err)
		h.reply(w, status, fluxgate.ErrorMessage(err))
		return
	}
	h.cfg.Logger.Debug("flux webhook: event accepted", "kind", ev.Kind, "namespace", ev.Namespace,
		"name", ev.Name, "reason", ev.Reason, "secret", secretID)
	w.WriteHeader(http.StatusAccepted)
}

func level(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func (h *Handler) reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authenticate returns the ID of the secret that signed the body or whose
// token is presented. A signature that is present must verify.
func (h *Handler) authenticate(r *http.Request, body []byte) (string, bool) {
	if sig := r.Header.Get("X-Signature"); sig != "" {
		hexSum, ok := strings.CutPrefix(sig, "sha256=")
		if !ok {
			return "", false
		}
		got, err := hex.DecodeString(hexSum)
		if err != nil {
			return "", false
		}
		for _, s := range h.cfg.Secrets {
			if len(s.Value) > 0 && hmac.Equal(got, Sign(s.Value, body)) {
				return s.ID, true
			}
		}
		return "", false
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	for _, s := range h.cfg.Secrets {
		if len(s.Value) > 0 && subtle.ConstantTimeCompare([]byte(token), s.Value) == 1 {
			return s.ID, true
		}
	}
	return "", false
}

// Sign returns the HMAC-SHA256 of body under key, as notification-controller
// computes it for X-Signature.
func Sign(key, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(nil)
}

// Parse turns a notification-controller payload into a FluxEvent with
// Source "webhook" and its DedupKey; now stands in for a missing timestamp.
func Parse(body []byte, now time.Time) (*fluxgate.FluxEvent, error) {
	var in eventv1.Event
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "malformed event payload: %v", err)
	}
	obj := in.InvolvedObject
	if obj.Kind == "" || obj.Name == "" {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "event payload has no involvedObject kind and name")
	}
	if in.Reason == "" {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "event payload has no reason")
	}

	ev := &fluxgate.FluxEvent{
		Kind:      obj.Kind,
		Name:      obj.Name,
		Namespace: obj.Namespace,
		Reason:    in.Reason,
		Message:   in.Message,
		Severity:  in.Severity,
		Type:      "Normal",
		Source:    "webhook",
		Timestamp: in.Timestamp.UTC(),
	}
	if ev.Severity == "" {
		ev.Severity = eventv1.EventSeverityInfo
	}
	if ev.Severity == eventv1.EventSeverityError {
		ev.Type = "Warning"
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = now.UTC().Truncate(time.Second)
	}
	if rev, ok := in.Metadata[eventv1.MetaRevisionKey]; ok {
		ev.Revision = rev // the source artifact revision, e.g. main@sha1:…
	} else {
		ev.Revision, _ = in.GetRevision()
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	var err error
	if ev.Metadata, err = json.Marshal(in.Metadata); err != nil {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "event metadata: %v", err)
	}
	ev.DedupKey = DedupKey(ev)
	return ev, nil
}

// DedupKey identifies a Flux event by what it says, not by how it was
// encoded or which way it arrived: the same event delivered twice
// (notification-controller retries), or seen by the cluster watcher too,
// gets the same key (fluxgate.FluxEventDedupKey).
func DedupKey(e *fluxgate.FluxEvent) string { return fluxgate.FluxEventDedupKey(e) }
