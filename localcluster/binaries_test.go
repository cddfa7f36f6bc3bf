package localcluster

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestToolsrcInSync checks that the embedded copies of the tool modules match
// tools/ (run tools/sync-localcluster.sh after changing tools/).
func TestToolsrcInSync(t *testing.T) {
	for _, mod := range []string{"kube", "flux", "kwok"} {
		root := filepath.Join("..", "tools", mod)
		if _, err := os.Stat(root); err != nil {
			t.Skipf("tools/%s not found: %v", mod, err)
		}
		want := map[string]bool{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			name := d.Name()
			if name != "go.mod" && name != "go.sum" && !strings.HasSuffix(name, ".go") {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			want[rel] = true
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			emb, err := toolsrc.ReadFile("toolsrc/" + mod + "/" + filepath.ToSlash(rel) + ".txt")
			if err != nil {
				t.Errorf("tools/%s/%s is not embedded: run tools/sync-localcluster.sh", mod, rel)
				return nil
			}
			if !bytes.Equal(src, emb) {
				t.Errorf("tools/%s/%s differs from its embedded copy: run tools/sync-localcluster.sh", mod, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = fs.WalkDir(toolsrc, "toolsrc/"+mod, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel := strings.TrimSuffix(strings.TrimPrefix(p, "toolsrc/"+mod+"/"), ".txt")
			if !want[filepath.FromSlash(rel)] {
				t.Errorf("embedded %s has no source in tools/%s: run tools/sync-localcluster.sh", p, mod)
			}
			return nil
		})
	}
}

func TestExtractModule(t *testing.T) {
	dir := t.TempDir()
	if err := extractModule("kube", dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum", "etcd/main.go", "kube-apiserver/main.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	b := &Builder{CacheDir: dir}
	p1, err := b.Path(Binaries()[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(p1), "kube-apiserver-v1.37.2-") {
		t.Errorf("path %s does not name the binary and version", p1)
	}
	if b.Cached(Binaries()[1]) {
		t.Error("empty cache reports a cached binary")
	}
}

func TestPKIAndPorts(t *testing.T) {
	dir := t.TempDir()
	p := pki{dir: filepath.Join(dir, "pki")}
	if err := p.ensure(); err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(p.caCert())
	if err := p.ensure(); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(p.caCert())
	if !bytes.Equal(ca1, ca2) {
		t.Error("ensure regenerated an existing CA")
	}
	if err := p.writeKubeconfig(6443); err != nil {
		t.Fatal(err)
	}
	kc, _ := os.ReadFile(p.kubeconfig())
	if !bytes.Contains(kc, []byte("https://127.0.0.1:6443")) {
		t.Errorf("kubeconfig does not point at the API server:\n%s", kc)
	}
	pts, err := loadPorts(filepath.Join(dir, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadPorts(filepath.Join(dir, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pts != again {
		t.Errorf("ports not kept across loads: %+v then %+v", pts, again)
	}
}
