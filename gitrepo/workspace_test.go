package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"

	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

func ptr[T any](v T) *T { return &v }

func TestReadFiles(t *testing.T) {
	bare := newRemote(t, map[string]string{"k8s/overlays/prod/notes.txt": "not yaml"})
	w := newWorkspace(t, Options{})
	ctx := context.Background()
	snap, err := w.ReadFiles(ctx, Remote{URL: bare}, "main", envDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := gitCmd(t, bare, "rev-parse", "main"); snap.Revision != want {
		t.Fatalf("revision = %s, want %s", snap.Revision, want)
	}
	var paths []string
	for _, f := range snap.Files {
		paths = append(paths, f.Path)
		if want := gitCmd(t, bare, "rev-parse", "main:"+f.Path); f.BlobID != want {
			t.Errorf("%s blob = %s, want %s", f.Path, f.BlobID, want)
		}
		if string(f.Content) != remoteFile(t, bare, f.Path)+"\n" {
			t.Errorf("%s content differs", f.Path)
		}
	}
	if got := strings.Join(paths, ","); got != envDir+"/deployment.yaml,"+envDir+"/kustomization.yaml" {
		t.Fatalf("files = %s", got)
	}
	// A missing directory is empty; a missing branch is not found.
	empty, err := w.ReadFiles(ctx, Remote{URL: bare}, "main", "k8s/overlays/nope")
	if err != nil || len(empty.Files) != 0 {
		t.Fatalf("missing dir: %v %v", empty, err)
	}
	if _, err := w.ReadFiles(ctx, Remote{URL: bare}, "nope", envDir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing branch: %v", err)
	}
	var binv *InvalidInputError
	for _, b := range []string{"main:refs/heads/x", "-x", "a..b", "a b", "x.lock", ""} {
		if _, err := w.ReadFiles(ctx, Remote{URL: bare}, b, envDir); !errors.As(err, &binv) || binv.Field != "branch" {
			t.Errorf("branch %q: %v", b, err)
		}
	}
	// ReadFilesAt reads a revision, fetching when this cache has not seen
	// it (another replica made it).
	w2 := newWorkspace(t, Options{})
	at, err := w2.ReadFilesAt(ctx, Remote{URL: bare}, "main", snap.Revision, envDir)
	if err != nil || len(at.Files) != 2 {
		t.Fatalf("ReadFilesAt: %v %v", at, err)
	}
	var inv *InvalidInputError
	if _, err := w.ReadFilesAt(ctx, Remote{URL: bare}, "main", strings.Repeat("ab", 20), envDir); !errors.As(err, &inv) {
		t.Fatalf("unknown revision: %v", err)
	}
}

func TestDeployCommitsAndPushes(t *testing.T) {
	bare := newRemote(t, nil)
	before := gitCmd(t, bare, "rev-parse", "main")
	w := newWorkspace(t, Options{Now: fixedClock()})
	req := DeployRequest{Image: ptr("ghcr.io/acme/web:2.0.0"), Replicas: ptr(int32(3)),
		Env: []yamledit.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}, User: "Ada Lovelace"}
	res, err := w.Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser, Edit: DeployEdit(req)})
	if err != nil {
		t.Fatal(err)
	}
	if head := gitCmd(t, bare, "rev-parse", "main"); head != res.SHA || res.Parent != before || res.Attempts != 1 {
		t.Fatalf("result %+v, remote head %s, old head %s", res, head, before)
	}
	msg := gitCmd(t, bare, "log", "-1", "--format=%B", "main")
	want := "chore(deploy): update image to ghcr.io/acme/web:2.0.0, scale to 3 replicas, update environment variables\n\nDeployed via fluxgate by Ada Lovelace"
	if msg != want {
		t.Fatalf("message = %q\nwant %q", msg, want)
	}
	if who := gitCmd(t, bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%cI", "main"); who != "Ada Lovelace <ada@example.com>|fluxgate <fluxgate@localhost>|2026-11-27T09:30:00+00:00" {
		t.Fatalf("author|committer|date = %s", who)
	}
	if changed := gitCmd(t, bare, "diff", "--name-only", before, "main"); changed != envDir+"/deployment.yaml" {
		t.Fatalf("changed files = %q", changed)
	}
	// Git agrees the trees are well-formed.
	gitCmd(t, bare, "fsck", "--strict")
	// The file matches the golden output of the same edit: comments kept.
	golden, err := os.ReadFile("testdata/edit/golden/deploy-form-env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := remoteFile(t, bare, envDir+"/deployment.yaml") + "\n"; got != string(golden) {
		t.Fatalf("pushed file differs from golden:\n%s", yamledit.UnifiedDiff("deployment.yaml", golden, []byte(got)))
	}
	// Same values again: nothing to commit.
	_, err = w.Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser, Edit: DeployEdit(req)})
	if !errors.Is(err, ErrNoChange) {
		t.Fatalf("repeat deploy: %v", err)
	}
	// A Deployment that does not exist.
	_, err = w.Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
		Edit: DeployEdit(DeployRequest{Deployment: "nope", Replicas: ptr(int32(1))})})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing deployment: %v", err)
	}
	if head := gitCmd(t, bare, "rev-parse", "main"); head != res.SHA {
		t.Fatal("a failed deploy moved the branch")
	}
}

func TestCommitRejectsPathsOutsideDir(t *testing.T) {
	bare := newRemote(t, nil)
	w := newWorkspace(t, Options{})
	for _, p := range []string{"../../base/configmap.yaml", "/etc/passwd", "k8s/base/configmap.yaml", envDir + "/../x.yaml"} {
		_, err := w.Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
			Edit: func(ctx context.Context, head *Snapshot) (*Change, error) {
				return &Change{Files: map[string][]byte{p: []byte("x: 1\n")}, Message: "m"}, nil
			}})
		var inv *InvalidInputError
		if !errors.As(err, &inv) || inv.Field != "path" {
			t.Errorf("%s: err = %v", p, err)
		}
	}
}

func TestCommitRetriesWhenBranchMoves(t *testing.T) {
	bare := newRemote(t, nil)
	ctx := context.Background()
	w1 := newWorkspace(t, Options{})
	w2 := newWorkspace(t, Options{})
	var calls atomic.Int32
	edit := DeployEdit(DeployRequest{Image: ptr("ghcr.io/acme/web:9"), User: "Ada"})
	res, err := w1.Commit(ctx, CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
		Edit: func(ctx context.Context, head *Snapshot) (*Change, error) {
			if calls.Add(1) == 1 {
				// Another replica pushes between our fetch and our push.
				if _, err := w2.Commit(ctx, CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
					Edit: DeployEdit(DeployRequest{Replicas: ptr(int32(7)), User: "Bob"})}); err != nil {
					return nil, err
				}
			}
			return edit(ctx, head)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || res.Attempts != 2 {
		t.Fatalf("edit calls = %d, attempts = %d; want 2 and 2", calls.Load(), res.Attempts)
	}
	if n := gitCmd(t, bare, "rev-list", "--count", "main"); n != "3" {
		t.Fatalf("commits = %s, want 3", n)
	}
	f := remoteFile(t, bare, envDir+"/deployment.yaml")
	if !strings.Contains(f, "replicas: 7") || !strings.Contains(f, `image: "ghcr.io/acme/web:9"`) {
		t.Fatalf("a change was lost:\n%s", f)
	}
}

func TestConcurrentDeploys(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared-locker=%v", shared), func(t *testing.T) {
			bare := newRemote(t, nil)
			before := gitCmd(t, bare, "rev-parse", "main")
			var locker *memLocker
			opts := Options{MaxAttempts: 40}
			if shared {
				locker = &memLocker{}
				opts.Locker = locker
			}
			ws := []*Workspace{newWorkspace(t, opts), newWorkspace(t, opts)}
			const n = 20
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					_, errs[i] = ws[i%2].Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
						Edit: DeployEdit(DeployRequest{Env: []yamledit.EnvVar{{Name: fmt.Sprintf("VAR_%02d", i), Value: fmt.Sprint(i)}}, User: "load"})})
				}(i)
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("deploy %d: %v", i, err)
				}
			}
			if c := gitCmd(t, bare, "rev-list", "--count", before+"..main"); c != fmt.Sprint(n) {
				t.Fatalf("new commits = %s, want %d", c, n)
			}
			f := remoteFile(t, bare, envDir+"/deployment.yaml")
			for i := 0; i < n; i++ {
				if !strings.Contains(f, fmt.Sprintf("- name: VAR_%02d\n              value: \"%d\"", i, i)) {
					t.Errorf("VAR_%02d lost", i)
				}
			}
			if !strings.Contains(f, "# log level for the app") {
				t.Error("comments lost")
			}
			if shared && locker.max != 1 {
				t.Errorf("cross-replica lock held %d times at once", locker.max)
			}
		})
	}
}

func TestConfigCommitMergesAndConflicts(t *testing.T) {
	bare := newRemote(t, nil)
	ctx := context.Background()
	r := Remote{URL: bare}
	w := newWorkspace(t, Options{})
	base, err := w.ReadFiles(ctx, r, "main", envDir)
	if err != nil {
		t.Fatal(err)
	}
	path := envDir + "/deployment.yaml"
	orig, _ := base.Get(path)
	// Someone scales the Deployment after the editor loaded the base.
	if _, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
		Edit: DeployEdit(DeployRequest{Replicas: ptr(int32(6)), User: "Bob"})}); err != nil {
		t.Fatal(err)
	}
	// Ours (from the base) changes the image: no overlap, merged.
	ours := strings.Replace(string(orig.Content), "ghcr.io/acme/web:1.4.2", "ghcr.io/acme/web:1.5.0", 1)
	change := ConfigChange{Base: base, Files: map[string][]byte{path: []byte(ours)}, Message: "bump web", Description: "Release 1.5.0"}
	head, err := w.ReadFiles(ctx, r, "main", envDir)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := PreviewChange(change, head)
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Conflicts) != 0 || len(pv.Changes) != 1 || pv.Changes[0].Path != "spec.template.spec.containers[name=web].image" || !pv.Impact.RestartsPods ||
		!strings.Contains(pv.Files[0].Diff, "+          image: \"ghcr.io/acme/web:1.5.0\"") {
		t.Fatalf("preview = %+v", pv)
	}
	res, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser, Edit: ConfigEdit(change)})
	if err != nil {
		t.Fatal(err)
	}
	f := remoteFile(t, bare, path)
	if !strings.Contains(f, "replicas: 6 # scaled by HPA in prod") || !strings.Contains(f, "ghcr.io/acme/web:1.5.0") {
		t.Fatalf("merged file lost a change:\n%s", f)
	}
	if msg := gitCmd(t, bare, "log", "-1", "--format=%B", "main"); msg != "bump web\n\nRelease 1.5.0" {
		t.Fatalf("message = %q", msg)
	}
	// Ours (still from the old base) sets replicas to 2→4: theirs set 6.
	conflicting := strings.Replace(string(orig.Content), "replicas: 2", "replicas: 4", 1)
	_, err = w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
		Edit: ConfigEdit(ConfigChange{Base: base, Files: map[string][]byte{path: []byte(conflicting)}, Message: "scale"})})
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 {
		t.Fatalf("err = %v, want one conflict", err)
	}
	if c := ce.Conflicts[0]; c.Path != "spec.replicas" || c.Base != "2" || c.Theirs != "6" || c.Ours != "4" || c.File != path {
		t.Fatalf("conflict = %+v", c)
	}
	if h := gitCmd(t, bare, "rev-parse", "main"); h != res.SHA {
		t.Fatal("a conflicting commit wrote something")
	}
	// Invalid YAML is refused before anything is written.
	_, err = w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
		Edit: ConfigEdit(ConfigChange{Base: base, Files: map[string][]byte{path: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicaz: 3\n")}, Message: "typo"})})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Issues[0].Path != "spec.replicaz" || ve.Issues[0].Line != 6 {
		t.Fatalf("err = %v", err)
	}
}

func TestStructuredAndViewChanges(t *testing.T) {
	bare := newRemote(t, nil)
	w := newWorkspace(t, Options{})
	snap, err := w.ReadFiles(context.Background(), Remote{URL: bare}, "main", envDir)
	if err != nil {
		t.Fatal(err)
	}
	views := DeploymentViews(snap)
	if len(views) != 1 || views[0].View.Name != "web" || views[0].Path != envDir+"/deployment.yaml" {
		t.Fatalf("views = %+v", views)
	}
	v := views[0].View
	v.Containers[0].LivenessProbe.InitialDelaySeconds = 30
	files, err := ViewChange(snap, v)
	if err != nil {
		t.Fatal(err)
	}
	d := yamledit.UnifiedDiff("d", snap.Files[0].Content, files[envDir+"/deployment.yaml"])
	if !strings.Contains(d, "-            initialDelaySeconds: 5\n+            initialDelaySeconds: 30\n") || strings.Count(d, "\n+") != 2 {
		t.Fatalf("view change diff:\n%s", d)
	}
	files, err = StructuredChange(snap, yamledit.DeploymentEdit{Replicas: ptr(int32(1))})
	if err != nil || !strings.Contains(string(files[envDir+"/deployment.yaml"]), "replicas: 1 # scaled") {
		t.Fatalf("structured change: %v", err)
	}
}

func TestCommitCreatesBranches(t *testing.T) {
	ctx := context.Background()
	// First commit of an empty repository.
	empty := t.TempDir() + "/empty.git"
	if _, err := git.PlainInit(empty, true); err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, Options{})
	scaffold := func(ctx context.Context, head *Snapshot) (*Change, error) {
		if head.Revision != "" || len(head.Files) != 0 {
			t.Errorf("head of a new branch = %+v", head)
		}
		return &Change{Files: map[string][]byte{"k8s/base/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")}, Message: "chore: scaffold"}, nil
	}
	res, err := w.Commit(ctx, CommitRequest{Remote: Remote{URL: empty}, Branch: "main", Dir: "k8s", Author: testUser, Edit: scaffold, CreateBranch: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Parent != "" || gitCmd(t, empty, "rev-parse", "main") != res.SHA || gitCmd(t, empty, "rev-list", "--count", "main") != "1" {
		t.Fatalf("root commit: %+v", res)
	}
	gitCmd(t, empty, "fsck", "--strict")
	// Without CreateBranch a missing branch is not found.
	if _, err := w.Commit(ctx, CommitRequest{Remote: Remote{URL: empty}, Branch: "staging", Dir: "k8s", Author: testUser, Edit: scaffold}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing branch: %v", err)
	}
	// A new environment branch from main.
	bare := newRemote(t, nil)
	res, err = w.Commit(ctx, CommitRequest{Remote: Remote{URL: bare}, Branch: "staging", Dir: envDir, Author: testUser, CreateBranch: true, From: "main",
		Edit: DeployEdit(DeployRequest{Replicas: ptr(int32(1)), User: "Ada"})})
	if err != nil {
		t.Fatal(err)
	}
	if res.Parent != gitCmd(t, bare, "rev-parse", "main") || !strings.Contains(remoteFile(t, bare, envDir+"/deployment.yaml"), "replicas: 2") ||
		!strings.Contains(gitCmd(t, bare, "show", "staging:"+envDir+"/deployment.yaml"), "replicas: 1 # scaled") {
		t.Fatalf("branch from main: %+v", res)
	}
}

func TestDeployWritesKustomizeImages(t *testing.T) {
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n  - deployment.yaml\nimages:\n  - name: ghcr.io/acme/web # the app\n    newTag: 1.4.2\n"
	bare := newRemote(t, map[string]string{envDir + "/kustomization.yaml": kust})
	before := gitCmd(t, bare, "rev-parse", "main")
	w := newWorkspace(t, Options{})
	_, err := w.Commit(context.Background(), CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser,
		Edit: DeployEdit(DeployRequest{Image: ptr("ghcr.io/acme/web:1.6.0"), Replicas: ptr(int32(4)), User: "Ada"})})
	if err != nil {
		t.Fatal(err)
	}
	got := remoteFile(t, bare, envDir+"/kustomization.yaml") + "\n"
	if want := strings.Replace(kust, "newTag: 1.4.2", "newTag: 1.6.0", 1); got != want {
		t.Fatalf("kustomization:\n%s\nwant:\n%s", got, want)
	}
	dep := remoteFile(t, bare, envDir+"/deployment.yaml")
	if !strings.Contains(dep, `image: "ghcr.io/acme/web:1.4.2"`) || !strings.Contains(dep, "replicas: 4 #") {
		t.Fatalf("deployment:\n%s", dep)
	}
	if changed := gitCmd(t, bare, "diff", "--name-only", before, "main"); changed != envDir+"/deployment.yaml\n"+envDir+"/kustomization.yaml" {
		t.Fatalf("changed = %q", changed)
	}
}

func TestConcurrentBranchesAndReads(t *testing.T) {
	bare := newRemote(t, nil)
	ctx := context.Background()
	r := Remote{URL: bare}
	w := newWorkspace(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := 0; i < 10; i++ {
		wg.Add(3)
		go func(i int) {
			defer wg.Done()
			_, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "staging", From: "main", CreateBranch: true, Dir: envDir, Author: testUser,
				Edit: DeployEdit(DeployRequest{Env: []yamledit.EnvVar{{Name: fmt.Sprintf("S_%d", i), Value: "x"}}})})
			errs <- err
		}(i)
		go func(i int) {
			defer wg.Done()
			_, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
				Edit: DeployEdit(DeployRequest{Env: []yamledit.EnvVar{{Name: fmt.Sprintf("M_%d", i), Value: "y"}}})})
			errs <- err
		}(i)
		go func() {
			defer wg.Done()
			s, err := w.ReadFiles(ctx, r, "main", envDir)
			if err == nil && len(s.Files) != 2 {
				err = fmt.Errorf("read %d files", len(s.Files))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for branch, prefix := range map[string]string{"main": "M_", "staging": "S_"} {
		f := gitCmd(t, bare, "show", branch+":"+envDir+"/deployment.yaml")
		for i := 0; i < 10; i++ {
			if !strings.Contains(f, fmt.Sprintf("name: %s%d\n", prefix, i)) {
				t.Errorf("%s lost %s%d", branch, prefix, i)
			}
		}
	}
}

func TestReadFetchInterval(t *testing.T) {
	bare := newRemote(t, nil)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newWorkspace(t, Options{ReadFetchInterval: time.Minute, Now: func() time.Time { return now }})
	other := newWorkspace(t, Options{})
	first, err := w.ReadFiles(ctx, Remote{URL: bare}, "main", envDir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := other.Commit(ctx, CommitRequest{Remote: Remote{URL: bare}, Branch: "main", Dir: envDir, Author: testUser, Edit: DeployEdit(DeployRequest{Replicas: ptr(int32(9))})})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := w.ReadFiles(ctx, Remote{URL: bare}, "main", envDir); s.Revision != first.Revision {
		t.Fatal("fetched within the interval")
	}
	now = now.Add(time.Minute)
	if s, _ := w.ReadFiles(ctx, Remote{URL: bare}, "main", envDir); s.Revision != res.SHA {
		t.Fatalf("revision after the interval = %s, want %s", s.Revision, res.SHA)
	}
}
