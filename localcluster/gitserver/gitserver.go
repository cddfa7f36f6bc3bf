// Package gitserver serves bare Git repositories kept in one directory over
// Git's smart HTTP protocol, so that Flux's source-controller can fetch them
// and fluxgate (or a developer) can push to them.
//
// It runs `git http-backend` through net/http/cgi: the reference server
// implementation, present wherever git is. Pushes are allowed without
// authentication, so serve it on loopback only.
package gitserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Server is an http.Handler for the repositories under Root. A request for
// /<name>.git/... is handed to git http-backend; mount it with
// http.StripPrefix when it does not sit at the root of a mux.
type Server struct {
	root    string
	backend *cgi.Handler
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// New returns a server for the bare repositories in root (created if
// missing). It fails when no git executable is on PATH.
func New(root string) (*Server, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git server: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("git server root: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create git root: %w", err)
	}
	return &Server{
		root: abs,
		backend: &cgi.Handler{
			Path: gitPath,
			Args: []string{"http-backend"},
			Dir:  abs,
			Env: []string{
				"GIT_PROJECT_ROOT=" + abs,
				"GIT_HTTP_EXPORT_ALL=1",
				"GIT_CONFIG_NOSYSTEM=1",
				"HOME=" + abs,
				// Anonymous push: the server is for loopback only.
				"GIT_CONFIG_COUNT=1",
				"GIT_CONFIG_KEY_0=http.receivepack",
				"GIT_CONFIG_VALUE_0=true",
			},
			InheritEnv: []string{"PATH"},
		},
	}, nil
}

// Root is the directory holding the bare repositories.
func (s *Server) Root() string { return s.root }

// RepoDir returns the directory of repository name ("demo" → <root>/demo.git).
func (s *Server) RepoDir(name string) string {
	return filepath.Join(s.root, strings.TrimSuffix(name, ".git")+".git")
}

// ServeHTTP serves /<name>.git/info/refs, git-upload-pack and
// git-receive-pack for existing repositories.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + r.URL.Path)
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	name := strings.TrimSuffix(first, ".git")
	if !strings.HasSuffix(first, ".git") || !validName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	if st, err := os.Stat(s.RepoDir(name)); err != nil || !st.IsDir() {
		http.NotFound(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = p
	s.backend.ServeHTTP(w, r2)
}

// Create makes an empty bare repository whose default branch is main. It
// reports false when the repository already exists.
func (s *Server) Create(name string) (bool, error) {
	if !validName.MatchString(strings.TrimSuffix(name, ".git")) {
		return false, fmt.Errorf("invalid repository name %q", name)
	}
	dir := s.RepoDir(name)
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	_, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	})
	if err != nil {
		return false, fmt.Errorf("init %s: %w", name, err)
	}
	return true, nil
}

// Seed creates repository name with one commit on main holding every file of
// files. It does nothing and reports false when the repository exists. The
// repository appears whole or not at all.
func (s *Server) Seed(name string, files fs.FS, message string) (bool, error) {
	dir := s.RepoDir(name)
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if !validName.MatchString(strings.TrimSuffix(name, ".git")) {
		return false, fmt.Errorf("invalid repository name %q", name)
	}
	tmp, err := os.MkdirTemp(s.root, ".seed-")
	if err != nil {
		return false, fmt.Errorf("seed %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if _, err := git.PlainInitWithOptions(tmp, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	}); err != nil {
		return false, fmt.Errorf("init %s: %w", name, err)
	}
	// The bare repository's storage with an in-memory work tree.
	storage := filesystem.NewStorage(osfs.New(tmp), cache.NewObjectLRUDefault())
	wt := memfs.New()
	repo, err := git.Open(storage, wt)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", name, err)
	}
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		f, err := wt.Create(p)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return false, fmt.Errorf("write seed files: %w", err)
	}
	tree, err := repo.Worktree()
	if err != nil {
		return false, fmt.Errorf("worktree: %w", err)
	}
	if err := tree.AddGlob("."); err != nil {
		return false, fmt.Errorf("add seed files: %w", err)
	}
	sig := &object.Signature{Name: "fluxgate", Email: "fluxgate@localhost", When: time.Now()}
	if _, err := tree.Commit(message, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		return false, fmt.Errorf("commit seed: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("install %s: %w", name, err)
	}
	return true, nil
}
