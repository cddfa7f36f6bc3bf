package webhook_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/webhook"
)

const (
	hmacKey     = "s3cr3t-hmac-key"
	bearerToken = "s3cr3t-bearer-token"
)

// sink stores events once per dedup key, as the service does.
type sink struct {
	mu      sync.Mutex
	events  []*fluxgate.FluxEvent
	calls   int
	secrets []string
	err     error
}

func (s *sink) HandleFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.secrets = append(s.secrets, webhook.SecretIDFromContext(ctx))
	if s.err != nil {
		return s.err
	}
	for _, old := range s.events {
		if old.DedupKey == e.DedupKey {
			return nil
		}
	}
	s.events = append(s.events, e)
	return nil
}

type fixture struct {
	h    *webhook.Handler
	sink *sink
	logs *bytes.Buffer
}

func newFixture(t *testing.T, maxBody int64) *fixture {
	t.Helper()
	f := &fixture{sink: &sink{}, logs: &bytes.Buffer{}}
	f.h = webhook.NewHandler(webhook.Config{
		Secrets: []webhook.Secret{
			{ID: "old-hmac", Value: []byte("rotated-out-key")},
			{ID: "flux-hmac", Value: []byte(hmacKey)},
			{ID: "flux-bearer", Value: []byte(bearerToken)},
		},
		Sink:         f.sink,
		MaxBodyBytes: maxBody,
		Logger:       slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          func() time.Time { return time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC) },
	})
	t.Cleanup(func() {
		for _, secret := range []string{hmacKey, bearerToken, "rotated-out-key"} {
			if strings.Contains(f.logs.String(), secret) {
				t.Errorf("a secret appears in the logs:\n%s", f.logs)
			}
		}
	})
	return f
}

func signature(key string, body []byte) string {
	return "sha256=" + hex.EncodeToString(webhook.Sign([]byte(key), body))
}

func (f *fixture) post(t *testing.T, body []byte, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/flux", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Gotk-Component", "source-controller")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		file string
		want fluxgate.FluxEvent
	}{
		{"gitrepository-newartifact.json", fluxgate.FluxEvent{
			Kind: "GitRepository", Name: "demo", Namespace: "flux-system", Reason: "NewArtifact",
			Message: "stored artifact for commit 'v1'", Severity: "info", Type: "Normal",
			Revision: "main@sha1:e47f4bc4a77fa7873fceb03fa39601fc4361dc9f", Source: "webhook",
			Timestamp: time.Date(2026, 11, 27, 4, 4, 34, 0, time.UTC),
		}},
		{"kustomization-progressing.json", fluxgate.FluxEvent{
			Kind: "Kustomization", Name: "demo", Namespace: "flux-system", Reason: "Progressing",
			Message: "ConfigMap/default/demo-config created", Severity: "info", Type: "Normal",
			Revision: "main@sha1:e47f4bc4a77fa7873fceb03fa39601fc4361dc9f", Source: "webhook",
			Timestamp: time.Date(2026, 11, 27, 4, 4, 34, 0, time.UTC),
		}},
	}
	matches, _ := filepath.Glob("testdata/*.json")
	if len(matches) != len(tests) {
		t.Fatalf("%d fixtures in testdata, %d tested", len(matches), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			for _, auth := range []string{"hmac", "bearer"} {
				f := newFixture(t, 0)
				body := readFixture(t, tt.file)
				header := map[string]string{"X-Signature": signature(hmacKey, body)}
				if auth == "bearer" {
					header = map[string]string{"Authorization": "Bearer " + bearerToken}
				}
				if rec := f.post(t, body, header); rec.Code != http.StatusAccepted {
					t.Fatalf("%s: status %d: %s", auth, rec.Code, rec.Body)
				}
				if len(f.sink.events) != 1 {
					t.Fatalf("%s: sink got %d events", auth, len(f.sink.events))
				}
				got := f.sink.events[0]
				want := tt.want
				if got.Kind != want.Kind || got.Name != want.Name || got.Namespace != want.Namespace ||
					got.Reason != want.Reason || got.Message != want.Message || got.Severity != want.Severity ||
					got.Type != want.Type || got.Revision != want.Revision || got.Source != want.Source ||
					!got.Timestamp.Equal(want.Timestamp) {
					t.Fatalf("%s: parsed %+v\nwant %+v", auth, got, want)
				}
				var meta map[string]string
				if err := json.Unmarshal(got.Metadata, &meta); err != nil || meta["revision"] != want.Revision {
					t.Fatalf("%s: metadata %s (%v)", auth, got.Metadata, err)
				}
				if got.DedupKey != fluxgate.FluxEventDedupKey(got) {
					t.Fatalf("%s: dedup key %q", auth, got.DedupKey)
				}
				wantSecret := map[string]string{"hmac": "flux-hmac", "bearer": "flux-bearer"}[auth]
				if f.sink.secrets[0] != wantSecret {
					t.Fatalf("%s: sink saw secret %q, want %q", auth, f.sink.secrets[0], wantSecret)
				}
			}
		})
	}
}

func TestRejectsBadCredentials(t *testing.T) {
	body := readFixture(t, "gitrepository-newartifact.json")
	tampered := bytes.Replace(body, []byte("'v1'"), []byte("'v2'"), 1)
	tests := []struct {
		name   string
		body   []byte
		header map[string]string
	}{
		{"no credentials", body, nil},
		{"wrong hmac key", body, map[string]string{"X-Signature": signature("guess", body)}},
		{"signature of another body", tampered, map[string]string{"X-Signature": signature(hmacKey, body)}},
		{"not hex", body, map[string]string{"X-Signature": "sha256=zz"}},
		{"other algorithm", body, map[string]string{"X-Signature": strings.Replace(signature(hmacKey, body), "sha256", "sha1", 1)}},
		{"wrong bearer", body, map[string]string{"Authorization": "Bearer nope"}},
		{"basic auth", body, map[string]string{"Authorization": "Basic " + bearerToken}},
		{"bad signature despite good bearer", body, map[string]string{
			"X-Signature": signature("guess", body), "Authorization": "Bearer " + bearerToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			if rec := f.post(t, tt.body, tt.header); rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if f.sink.calls != 0 {
				t.Fatal("the sink was called for an unauthenticated request")
			}
		})
	}
}

func TestNoSecretsRefusesAll(t *testing.T) {
	s := &sink{}
	h := webhook.NewHandler(webhook.Config{Sink: s})
	req := httptest.NewRequest(http.MethodPost, "/webhooks/flux", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || s.calls != 0 {
		t.Fatalf("status %d, sink calls %d", rec.Code, s.calls)
	}
}

func TestReplayIsStoredOnce(t *testing.T) {
	f := newFixture(t, 0)
	body := readFixture(t, "kustomization-progressing.json")
	for range 2 {
		if rec := f.post(t, body, map[string]string{"X-Signature": signature(hmacKey, body)}); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d", rec.Code)
		}
	}
	// The same event encoded differently (compact, keys reordered) too.
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(m)
	if rec := f.post(t, compact, map[string]string{"Authorization": "Bearer " + bearerToken}); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	if f.sink.calls != 3 || len(f.sink.events) != 1 {
		t.Fatalf("sink calls %d, stored %d; want 3 calls, 1 stored", f.sink.calls, len(f.sink.events))
	}

	// A different event gets a different key.
	other := bytes.Replace(body, []byte("created"), []byte("configured"), 1)
	if rec := f.post(t, other, map[string]string{"X-Signature": signature(hmacKey, other)}); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	if len(f.sink.events) != 2 {
		t.Fatalf("stored %d events, want 2", len(f.sink.events))
	}
}

func TestMalformedPayloads(t *testing.T) {
	tests := map[string]string{
		"not json":             `{"involvedObject":`,
		"wrong types":          `{"involvedObject":"GitRepository","reason":"NewArtifact"}`,
		"no involved object":   `{"reason":"NewArtifact","severity":"info","message":"x"}`,
		"no reason":            `{"involvedObject":{"kind":"Kustomization","name":"demo"},"message":"x"}`,
		"bad timestamp format": `{"involvedObject":{"kind":"Kustomization","name":"demo"},"reason":"R","timestamp":"yesterday"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 0)
			if rec := f.post(t, []byte(body), map[string]string{"X-Signature": signature(hmacKey, []byte(body))}); rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", rec.Code)
			}
			if f.sink.calls != 0 {
				t.Fatal("the sink was called")
			}
		})
	}
}

func TestErrorSeverityIsWarning(t *testing.T) {
	f := newFixture(t, 0)
	body := []byte(`{"involvedObject":{"kind":"Kustomization","namespace":"flux-system","name":"demo"},` +
		`"severity":"error","message":"Health check failed","reason":"HealthCheckFailed","reportingController":"kustomize-controller"}`)
	if rec := f.post(t, body, map[string]string{"X-Signature": signature(hmacKey, body)}); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	got := f.sink.events[0]
	if got.Type != "Warning" || got.Severity != "error" || got.Revision != "" {
		t.Fatalf("parsed %+v", got)
	}
	// No timestamp in the payload: the handler's clock, to the second.
	if !got.Timestamp.Equal(time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("timestamp %v", got.Timestamp)
	}
}

func TestBodyTooLarge(t *testing.T) {
	body := readFixture(t, "gitrepository-newartifact.json")
	f := newFixture(t, int64(len(body)-1))
	if rec := f.post(t, body, map[string]string{"X-Signature": signature(hmacKey, body)}); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("with Content-Length: status %d, want 413", rec.Code)
	}
	// Without a Content-Length (chunked), the limit still holds.
	req := httptest.NewRequest(http.MethodPost, "/webhooks/flux", bytes.NewReader(body))
	req.ContentLength = -1
	req.Header.Set("X-Signature", signature(hmacKey, body))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d, want 413", rec.Code)
	}
	if f.sink.calls != 0 {
		t.Fatal("the sink was called")
	}
}

func TestMethodAndSinkErrors(t *testing.T) {
	f := newFixture(t, 0)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhooks/flux", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
		t.Fatalf("GET: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}

	body := readFixture(t, "gitrepository-newartifact.json")
	sig := map[string]string{"X-Signature": signature(hmacKey, body)}
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fluxgate.Errorf(fluxgate.ENOTFOUND, "no project owns GitRepository flux-system/demo"), http.StatusNotFound},
		{fluxgate.Errorf(fluxgate.EINVALID, "bad"), http.StatusUnprocessableEntity},
		{fluxgate.Errorf(fluxgate.EUNAVAILABLE, "database starting"), http.StatusServiceUnavailable},
		{errors.New("disk full"), http.StatusInternalServerError},
	} {
		f.sink.err = tt.err
		rec := f.post(t, body, sig)
		if rec.Code != tt.want {
			t.Fatalf("sink error %v: status %d, want %d", tt.err, rec.Code, tt.want)
		}
		if tt.want == http.StatusInternalServerError && strings.Contains(rec.Body.String(), "disk full") {
			t.Fatal("an internal error reached the response")
		}
	}
}
