package gitserver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/fluxgate/fluxgate/localcluster/demo"
	"github.com/fluxgate/fluxgate/localcluster/gitserver"
)

func TestSeedCloneAndPush(t *testing.T) {
	srv, err := gitserver.New(t.TempDir())
	if err != nil {
		t.Skipf("no git: %v", err)
	}
	created, err := srv.Seed("demo", demo.Files(), demo.CommitMessage)
	if err != nil || !created {
		t.Fatalf("seed: created=%v err=%v", created, err)
	}
	if again, err := srv.Seed("demo", demo.Files(), demo.CommitMessage); err != nil || again {
		t.Fatalf("second seed: created=%v err=%v", again, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/git/", http.StripPrefix("/git", srv))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := ts.URL + "/git/demo.git"

	fs := memfs.New()
	repo, err := git.Clone(memory.NewStorage(), fs, &git.CloneOptions{URL: url})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	f, err := fs.Open(demo.ManifestPath("development"))
	if err != nil {
		t.Fatalf("open overlay: %v", err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if len(data) == 0 {
		t.Fatal("empty overlay manifest")
	}

	wt, _ := repo.Worktree()
	nf, _ := fs.Create("NOTES.md")
	nf.Write([]byte("pushed\n"))
	nf.Close()
	if _, err := wt.Add("NOTES.md"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	sha, err := wt.Commit("notes", &git.CommitOptions{Author: sig})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Push(&git.PushOptions{}); err != nil {
		t.Fatalf("push: %v", err)
	}

	// A fresh clone sees the pushed commit on main.
	repo2, err := git.Clone(memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url})
	if err != nil {
		t.Fatalf("clone after push: %v", err)
	}
	head, err := repo2.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	if head.Hash() != sha {
		t.Fatalf("main = %s, want pushed %s", head.Hash(), sha)
	}

	resp, err := http.Get(ts.URL + "/git/missing.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing repo status = %d", resp.StatusCode)
	}
}
