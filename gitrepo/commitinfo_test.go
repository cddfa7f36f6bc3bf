package gitrepo

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCommitInfoOfOutsidePush reads the author and message of a commit
// pushed with the git CLI after the workspace cached the remote.
func TestCommitInfoOfOutsidePush(t *testing.T) {
	bare := newRemote(t, nil)
	w := newWorkspace(t, Options{})
	ctx := context.Background()
	r := Remote{URL: "file://" + bare}
	if _, err := w.ReadFiles(ctx, r, "main", envDir); err != nil {
		t.Fatal(err)
	}

	work := filepath.Join(t.TempDir(), "clone")
	gitCmd(t, filepath.Dir(work), "clone", "-q", "-b", "main", bare, work)
	if err := writeFile(filepath.Join(work, envDir, "note.yaml"), []byte("a: 1\n")); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, work, "add", "-A")
	cmd := exec.Command("git", "-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com",
		"commit", "-q", "-m", "feat: add a note\n\nWhy it matters.")
	cmd.Dir = work
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	gitCmd(t, work, "push", "-q", "origin", "main")
	sha := gitCmd(t, work, "rev-parse", "HEAD")

	info, err := w.CommitInfo(ctx, r, "main", sha)
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA != sha || info.AuthorName != "Grace Hopper" || info.AuthorEmail != "grace@example.com" ||
		info.Subject != "feat: add a note" || info.Body != "Why it matters." || info.When.IsZero() {
		t.Fatalf("CommitInfo = %+v", info)
	}

	_, err = w.CommitInfo(ctx, r, "main", "0123456789abcdef0123456789abcdef01234567")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown commit: err = %v, want ErrNotFound", err)
	}
	var inv *InvalidInputError
	if _, err := w.CommitInfo(ctx, r, "main", "HEAD"); !errors.As(err, &inv) {
		t.Fatalf("not a SHA: err = %v, want *InvalidInputError", err)
	}
}
