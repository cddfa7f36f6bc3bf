package gitrepo

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
)

const envDir = "k8s/overlays/prod"

var testUser = Signature{Name: "Ada Lovelace", Email: "ada@example.com"}

// gitCmd runs the git CLI (an independent oracle for what is on the remote).
func gitCmd(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=seed", "GIT_AUTHOR_EMAIL=seed@example.com",
		"GIT_COMMITTER_NAME=seed", "GIT_COMMITTER_EMAIL=seed@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newRemote creates a bare repository in a temp dir (go-git PlainInit) and
// pushes a first commit on main with testdata/repo plus extra files.
func newRemote(tb testing.TB, extra map[string]string) string {
	tb.Helper()
	bare := filepath.Join(tb.TempDir(), "remote.git")
	if _, err := git.PlainInit(bare, true); err != nil {
		tb.Fatal(err)
	}
	work := tb.TempDir()
	err := filepath.WalkDir("testdata/repo", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("testdata/repo", p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(work, rel), b)
	})
	if err != nil {
		tb.Fatal(err)
	}
	for p, c := range extra {
		if err := writeFile(filepath.Join(work, p), []byte(c)); err != nil {
			tb.Fatal(err)
		}
	}
	gitCmd(tb, work, "init", "-q", "-b", "main")
	gitCmd(tb, work, "add", "-A")
	gitCmd(tb, work, "commit", "-q", "-m", "initial")
	gitCmd(tb, work, "push", "-q", bare, "main")
	return bare
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func newWorkspace(tb testing.TB, opts Options) *Workspace {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := w.Close(); err != nil {
			tb.Error(err)
		}
	})
	return w
}

// remoteFile returns a file's content at the remote's main.
func remoteFile(tb testing.TB, bare, path string) string {
	tb.Helper()
	return gitCmd(tb, bare, "show", "main:"+path)
}

// memLocker stands in for the PostgreSQL advisory lock shared by replicas.
type memLocker struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	held  int
	max   int
}

func (l *memLocker) Lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m := l.locks[key]
	if m == nil {
		m = &sync.Mutex{}
		l.locks[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	l.mu.Lock()
	l.held++
	l.max = max(l.max, l.held)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		l.held--
		l.mu.Unlock()
		m.Unlock()
	}, nil
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	return func() time.Time { return t }
}
