package k8s

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fluxgate/fluxgate"
)

// readFixture decodes testdata/<name> (copied from ../shared/fixtures:
// objects captured from real Flux controllers) into v.
func readFixture(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode fixture %s: %v", name, err)
	}
}

// mustFakeClient returns a fake client with the fluxgate scheme, status
// subresources for the Flux kinds and server-side apply support.
func mustFakeClient(tb testing.TB, objs ...client.Object) client.WithWatch {
	tb.Helper()
	scheme, err := NewScheme()
	if err != nil {
		tb.Fatal(err)
	}
	var status []client.Object
	for _, k := range AllKinds() {
		o, _ := NewObject(k)
		status = append(status, o)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(status...).WithObjects(objs...).Build()
}

func specJSON(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func strPtr(s string) *string { return &s }

// resource returns a GitOpsResource of kind with spec.
func resource(tb testing.TB, kind fluxgate.ResourceKind, name string, spec any) *fluxgate.GitOpsResource {
	tb.Helper()
	return &fluxgate.GitOpsResource{
		ID:            "res-" + name,
		ProjectID:     "proj-1",
		EnvironmentID: strPtr("env-1"),
		Kind:          kind,
		Name:          name,
		Namespace:     "proj-demo",
		Spec:          specJSON(tb, spec),
	}
}

// fixedClock returns a clock that starts at t and advances by step on each
// call.
func fixedClock(t time.Time, step time.Duration) func() time.Time {
	return func() time.Time {
		now := t
		t = t.Add(step)
		return now
	}
}

func wantCode(tb testing.TB, err error, code, field string) {
	tb.Helper()
	if got := fluxgate.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if field != "" {
		if got := fluxgate.ErrorField(err); got != field {
			tb.Fatalf("error field = %q (%v), want %q", got, err, field)
		}
	}
}
