package tracker

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/fluxgate/fluxgate"
)

func clone(t *testing.T, d *fluxgate.Deployment) *fluxgate.Deployment {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var out fluxgate.Deployment
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func jsonEqual(t *testing.T, a, b *fluxgate.Deployment) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
