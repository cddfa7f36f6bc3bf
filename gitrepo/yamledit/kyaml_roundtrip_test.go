package yamledit

import (
	"bytes"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
)

// TestKyamlRoundTripIsNotByteExact documents why edits are written back by
// patching bytes: a kyaml read/write round trip with the style-preserving
// options (PreserveSeqIndent, reader annotations cleared on write) still reformats the
// annotated fixture, while EditDeployment with nothing to change keeps
// every byte.
func TestKyamlRoundTripIsNotByteExact(t *testing.T) {
	src := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(src), PreserveSeqIndent: true}).Read()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (kio.ByteWriter{Writer: &out}).Write(nodes); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out.Bytes(), src) {
		t.Skip("kyaml round trip is byte-exact for this fixture")
	}
	t.Logf("kyaml round trip differs:\n%s", UnifiedDiff("deployment.yaml", src, out.Bytes()))
	same, err := EditDeployment(src, DeploymentEdit{Replicas: ptr(int32(2))})
	if err != nil || !bytes.Equal(same, src) {
		t.Fatalf("no-op edit changed the file (%v)", err)
	}
}
