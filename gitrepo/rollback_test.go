package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// rollbackRepo is a remote, a workspace and helpers to make history on it.
type rollbackRepo struct {
	t    *testing.T
	bare string
	r    Remote
	w    *Workspace
}

func newRollbackRepo(t *testing.T, extra map[string]string) *rollbackRepo {
	t.Helper()
	bare := newRemote(t, extra)
	return &rollbackRepo{t: t, bare: bare, r: Remote{URL: bare}, w: newWorkspace(t, Options{Now: fixedClock()})}
}

// deploy commits an image and/or replica change through DeployEdit and
// returns the new head.
func (rr *rollbackRepo) deploy(image string, replicas int32) string {
	rr.t.Helper()
	req := DeployRequest{User: "Bob"}
	if image != "" {
		req.Image = &image
	}
	if replicas != 0 {
		req.Replicas = &replicas
	}
	res, err := rr.w.Commit(context.Background(), CommitRequest{Remote: rr.r, Branch: "main", Dir: envDir, Author: testUser, Edit: DeployEdit(req)})
	if err != nil {
		rr.t.Fatal(err)
	}
	return res.SHA
}

// write commits raw file changes (nil deletes) under dir.
func (rr *rollbackRepo) write(dir string, files map[string][]byte) string {
	rr.t.Helper()
	res, err := rr.w.Commit(context.Background(), CommitRequest{Remote: rr.r, Branch: "main", Dir: dir, Author: testUser,
		Edit: func(context.Context, *Snapshot) (*Change, error) {
			return &Change{Files: files, Message: "edit files"}, nil
		}})
	if err != nil {
		rr.t.Fatal(err)
	}
	return res.SHA
}

func (rr *rollbackRepo) at(sha string) *Snapshot {
	rr.t.Helper()
	s, err := rr.w.ReadFilesAt(context.Background(), rr.r, "main", sha, envDir)
	if err != nil {
		rr.t.Fatal(err)
	}
	return s
}

// rollback commits a rollback to target with base (empty: the head).
func (rr *rollbackRepo) rollback(target, base string) (*CommitResult, error) {
	rr.t.Helper()
	rb := Rollback{Target: rr.at(target), Message: RollbackMessage("prod", target, "2.0.0", "Ada Lovelace")}
	if base != "" {
		rb.Base = rr.at(base)
	}
	return rr.w.Commit(context.Background(), CommitRequest{Remote: rr.r, Branch: "main", Dir: envDir, Author: testUser, Edit: RollbackEdit(rb)})
}

func (rr *rollbackRepo) head() string { return gitCmd(rr.t, rr.bare, "rev-parse", "main") }

func (rr *rollbackRepo) file(rev, path string) string {
	return gitCmd(rr.t, rr.bare, "show", rev+":"+path)
}

const depPath = envDir + "/deployment.yaml"

func TestRollbackRestoresEarlierImage(t *testing.T) {
	rr := newRollbackRepo(t, nil)
	target := rr.deploy("ghcr.io/acme/web:2.0.0", 0)
	deployed := rr.deploy("ghcr.io/acme/web:2.1.0", 0)

	res, err := rr.rollback(target, deployed)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA != rr.head() || res.Parent != deployed || len(res.Files) != 1 || res.Files[0] != depPath {
		t.Fatalf("result %+v, head %s, deployed %s", res, rr.head(), deployed)
	}
	// The manifest is byte for byte the target's again (comments and all).
	if got, want := rr.file("main", depPath), rr.file(target, depPath); got != want {
		t.Fatalf("restored file differs from the target's:\n%s", gitCmd(t, rr.bare, "diff", target, "main", "--", depPath))
	}
	if !strings.Contains(rr.file("main", depPath), `image: "ghcr.io/acme/web:2.0.0"`) {
		t.Fatal("image not restored")
	}
	msg := gitCmd(t, rr.bare, "log", "-1", "--format=%an|%B", "main")
	if want := "Ada Lovelace|chore(deploy): roll back prod to " + target[:7] + " (2.0.0)\n\nRolled back via fluxgate by Ada Lovelace"; msg != want {
		t.Fatalf("commit = %q\nwant %q", msg, want)
	}
	gitCmd(t, rr.bare, "fsck", "--strict")

	// Rolling back again: the head already is the target's state.
	if _, err := rr.rollback(target, deployed); !errors.Is(err, ErrNoChange) {
		t.Fatalf("second rollback: %v, want ErrNoChange", err)
	}
	if _, err := rr.rollback(target, ""); !errors.Is(err, ErrNoChange) {
		t.Fatalf("rollback to the head's own state: %v, want ErrNoChange", err)
	}
}

func TestRollbackKeepsUnrelatedLaterChange(t *testing.T) {
	rr := newRollbackRepo(t, nil)
	target := rr.deploy("ghcr.io/acme/web:2.0.0", 0)
	deployed := rr.deploy("ghcr.io/acme/web:2.1.0", 0)
	later := rr.deploy("", 5) // pushed after the deployed commit, not part of the rollback

	if _, err := rr.rollback(target, deployed); err != nil {
		t.Fatal(err)
	}
	f := rr.file("main", depPath)
	if !strings.Contains(f, `image: "ghcr.io/acme/web:2.0.0"`) || !strings.Contains(f, "replicas: 5 # scaled by HPA in prod") {
		t.Fatalf("rolled back file lost a side:\n%s", f)
	}
	// Exactly the image line differs from the later head.
	diff := gitCmd(t, rr.bare, "diff", "-U0", later, "main")
	if strings.Count(diff, "\n-  ") != 1 || strings.Count(diff, "\n+  ") != 1 || !strings.Contains(diff, `+          image: "ghcr.io/acme/web:2.0.0"`) {
		t.Fatalf("diff against the later head:\n%s", diff)
	}

	// Without a base (nothing deployed since the target) the head is the
	// base: the target's files come back exactly, the replicas too.
	if _, err := rr.rollback(target, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := gitCmd(t, rr.bare, "rev-parse", "main:"+envDir), gitCmd(t, rr.bare, "rev-parse", target+":"+envDir); got != want {
		t.Fatalf("environment tree %s, want the target's %s", got, want)
	}
}

func TestRollbackOverlappingChangeConflicts(t *testing.T) {
	rr := newRollbackRepo(t, nil)
	target := rr.deploy("ghcr.io/acme/web:2.0.0", 0)
	deployed := rr.deploy("ghcr.io/acme/web:2.1.0", 3)
	rr.deploy("ghcr.io/acme/web:2.2.0", 0) // a newer image pushed, not deployed yet
	before := rr.head()

	_, err := rr.rollback(target, deployed)
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 {
		t.Fatalf("err = %v, want one conflict", err)
	}
	// Base is what is deployed, theirs the head, ours the target.
	if c := ce.Conflicts[0]; c.File != depPath || c.Resource != "Deployment/shop/web" || c.Path != "spec.template.spec.containers[name=web].image" ||
		c.Base != "ghcr.io/acme/web:2.1.0" || c.Theirs != "ghcr.io/acme/web:2.2.0" || c.Ours != "ghcr.io/acme/web:2.0.0" {
		t.Fatalf("conflict = %+v", c)
	}
	if rr.head() != before {
		t.Fatal("a conflicting rollback wrote something")
	}
}

func cm(name, value string) []byte {
	return fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  key: %q\n", name, value)
}

func TestRollbackAddedAndRemovedFiles(t *testing.T) {
	rr := newRollbackRepo(t, map[string]string{envDir + "/old.yaml": string(cm("old", "1"))})
	target := rr.head()
	// Since the target: old.yaml removed, new.yaml and gone.yaml added,
	// and a file outside the environment's directory changed.
	deployed := rr.write(envDir, map[string][]byte{envDir + "/old.yaml": nil, envDir + "/new.yaml": cm("new", "1"), envDir + "/gone.yaml": cm("gone", "1")})
	rr.write("k8s/base", map[string][]byte{"k8s/base/configmap.yaml": cm("web-config", "changed")})
	// After the deployed commit: someone edits new.yaml, another adds keep.yaml.
	rr.write(envDir, map[string][]byte{envDir + "/new.yaml": cm("new", "2")})
	rr.write(envDir, map[string][]byte{envDir + "/keep.yaml": cm("keep", "1")})
	before := rr.head()

	// new.yaml was added since the target but changed since the deployed
	// commit: deleting it would lose that change.
	_, err := rr.rollback(target, deployed)
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 || ce.Conflicts[0].File != envDir+"/new.yaml" ||
		ce.Conflicts[0].Theirs != "(file exists)" || ce.Conflicts[0].Ours != "" {
		t.Fatalf("err = %v (%+v), want the deletion of new.yaml to conflict", err, ce)
	}
	if rr.head() != before {
		t.Fatal("a conflicting rollback wrote something")
	}

	// Put new.yaml back as deployed: now the rollback goes through.
	rr.write(envDir, map[string][]byte{envDir + "/new.yaml": cm("new", "1")})
	res, err := rr.rollback(target, deployed)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Files, ","); got != envDir+"/gone.yaml,"+envDir+"/new.yaml,"+envDir+"/old.yaml" {
		t.Fatalf("changed files = %s", got)
	}
	files := gitCmd(t, rr.bare, "ls-tree", "--name-only", "main:"+envDir)
	if files != "deployment.yaml\nkeep.yaml\nkustomization.yaml\nold.yaml" {
		t.Fatalf("files after the rollback:\n%s", files)
	}
	if got, want := rr.file("main", envDir+"/old.yaml"), rr.file(target, envDir+"/old.yaml"); got != want {
		t.Fatalf("old.yaml restored as %q, want %q", got, want)
	}
	// keep.yaml (added after the deployed commit) and the change outside
	// the environment's directory stay.
	if !strings.Contains(rr.file("main", "k8s/base/configmap.yaml"), `key: "changed"`) {
		t.Fatal("a file outside the environment's directory was rolled back")
	}
	if got := gitCmd(t, rr.bare, "diff", "--no-renames", "--name-status", res.Parent, "main"); got != "D\t"+envDir+"/gone.yaml\nD\t"+envDir+"/new.yaml\nA\t"+envDir+"/old.yaml" {
		t.Fatalf("rollback commit:\n%s", got)
	}
}

func TestRollbackMessage(t *testing.T) {
	for _, c := range []struct{ env, sha, version, user, want string }{
		{"prod", "0123456789abcdef", "1.4.2", "Ada", "chore(deploy): roll back prod to 0123456 (1.4.2)\n\nRolled back via fluxgate by Ada"},
		{"dev", "0123456789abcdef", "", "", "chore(deploy): roll back dev to 0123456\n\nRolled back via fluxgate by unknown user"},
	} {
		if got := RollbackMessage(c.env, c.sha, c.version, c.user); got != c.want {
			t.Errorf("RollbackMessage(%q, %q, %q, %q) = %q, want %q", c.env, c.sha, c.version, c.user, got, c.want)
		}
	}
}
