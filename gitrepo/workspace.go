// Package gitrepo is fluxgate's Git engine: a cache of repositories (clone
// once, fetch on use), reading an environment's manifests at a branch head
// straight from the object store, committing file changes by writing tree
// objects directly (no work tree), pushing with fetch-reapply-retry on
// non-fast-forward, serialization per repository and branch (in-process
// and, through Locker, across replicas), credential sealing and redaction.
// YAML editing, validation, diff and merge live in gitrepo/yamledit.
package gitrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Locker serializes work on one repository branch across replicas (the
// service implements it with a PostgreSQL advisory lock). Lock blocks until
// the lock for key is held or ctx ends; unlock releases it.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Signature is a commit author or committer.
type Signature struct {
	Name  string
	Email string
}

// Options configure a Workspace.
type Options struct {
	// Dir holds one bare cache repository per remote. Required. A cache
	// dir belongs to one Workspace (one per process): replicas each have
	// their own and coordinate through the remote and Locker.
	Dir string
	// Locker serializes across replicas; nil means in-process only.
	Locker Locker
	// Committer of every commit (the author is the user). Defaults to
	// "fluxgate <fluxgate@localhost>".
	Committer Signature
	// Now is the clock for commit times. Defaults to time.Now.
	Now func() time.Time
	// MaxAttempts bounds push attempts when the branch moves under us
	// (default 8). BaseBackoff is the first retry delay, doubled each
	// time with jitter and capped at 2s (default 50ms).
	MaxAttempts int
	BaseBackoff time.Duration
	// Logger for retries; defaults to slog.Default(). Messages never hold
	// credentials.
	Logger *slog.Logger
	// ReadFetchInterval lets ReadFiles skip the fetch when the branch was
	// fetched less than this long ago (0: always fetch). Commit always
	// fetches.
	ReadFetchInterval time.Duration
}

// Workspace is a cache of Git repositories on disk. It is safe for
// concurrent use; several Workspaces (processes) may share a remote.
type Workspace struct {
	opts  Options
	locks keyedMutex // per remote+branch

	mu    sync.Mutex
	repos map[string]*cachedRepo
}

type cachedRepo struct {
	mu   sync.Mutex // guards all go-git calls on repo
	dir  string
	url  string
	repo *git.Repository
	st   *filesystem.Storage

	fetched map[string]time.Time // branch → last successful fetch
}

// Close releases the open pack files of every cached repository. The
// Workspace must not be used afterwards.
func (w *Workspace) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for id, c := range w.repos {
		c.mu.Lock()
		if err := c.st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", id, err))
		}
		c.mu.Unlock()
		delete(w.repos, id)
	}
	return errors.Join(errs...)
}

// New returns a Workspace caching repositories under opts.Dir.
func New(opts Options) (*Workspace, error) {
	if opts.Dir == "" {
		return nil, errors.New("gitrepo: cache dir is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	if opts.Committer.Name == "" {
		opts.Committer = Signature{Name: "fluxgate", Email: "fluxgate@localhost"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Workspace{opts: opts, repos: map[string]*cachedRepo{}}, nil
}

// File is one file read from Git.
type File struct {
	Path    string // repository-relative, slash-separated
	Content []byte
	BlobID  string
}

// Snapshot is the set of YAML files under a directory at one revision.
type Snapshot struct {
	Revision string // commit SHA
	Dir      string
	Files    []File
}

// Get returns the file at path, if present.
func (s *Snapshot) Get(p string) (File, bool) {
	for _, f := range s.Files {
		if f.Path == p {
			return f, true
		}
	}
	return File{}, false
}

// Contents maps path to content.
func (s *Snapshot) Contents() map[string][]byte {
	m := make(map[string][]byte, len(s.Files))
	for _, f := range s.Files {
		m[f.Path] = f.Content
	}
	return m
}

// IsManifest reports whether a path is a YAML manifest.
func IsManifest(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

// CleanPath checks that p is a relative path inside dir (no "..", not
// absolute) and returns it cleaned. It returns an *InvalidInputError.
func CleanPath(dir, p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
		return "", &InvalidInputError{Field: "path", Reason: fmt.Sprintf("%q is not a relative path", p)}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == ".git" {
			return "", &InvalidInputError{Field: "path", Reason: fmt.Sprintf("%q leaves the environment's directory", p)}
		}
	}
	c := path.Clean(p)
	d := cleanDir(dir)
	if d != "" && c != d && !strings.HasPrefix(c, d+"/") {
		return "", &InvalidInputError{Field: "path", Reason: fmt.Sprintf("%q is outside the environment's directory %q", p, d)}
	}
	return c, nil
}

func cleanDir(dir string) string {
	d := path.Clean("/" + strings.Trim(dir, "/"))
	return strings.TrimPrefix(d, "/")
}

func (w *Workspace) lockKey(url, branch string) string {
	return "fluxgate/gitrepo:" + url + "#" + branch
}

// lock takes the in-process lock and then the cross-replica lock for a
// remote branch.
func (w *Workspace) lock(ctx context.Context, url, branch string) (func(), error) {
	key := w.lockKey(url, branch)
	unlockLocal, err := w.locks.lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", branch, err)
	}
	if w.opts.Locker == nil {
		return unlockLocal, nil
	}
	unlockRemote, err := w.opts.Locker.Lock(ctx, key)
	if err != nil {
		unlockLocal()
		return nil, fmt.Errorf("lock %s across replicas: %w", branch, err)
	}
	return func() { unlockRemote(); unlockLocal() }, nil
}

// open returns the cache repository for r, creating it on first use.
func (w *Workspace) open(r Remote) (*cachedRepo, error) {
	sum := sha256.Sum256([]byte(r.URL))
	id := hex.EncodeToString(sum[:12])
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.repos[id]; ok {
		return c, nil
	}
	dir := filepath.Join(w.opts.Dir, id+".git")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	// Pack files stay open between operations, and decoded objects
	// (trees along the environment's path) stay cached.
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(64*cache.MiByte), filesystem.Options{KeepDescriptors: true})
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil)
		if err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL}})
		}
	}
	if err != nil {
		st.Close()
		return nil, sanitize("open cache", err, r.Auth.secrets())
	}
	c := &cachedRepo{dir: dir, url: r.URL, repo: repo, st: st, fetched: map[string]time.Time{}}
	w.repos[id] = c
	return c, nil
}

// checkBranch refuses names git would refuse or that would change the
// meaning of a refspec. It returns an *InvalidInputError.
func checkBranch(b string) error {
	if b == "" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") ||
		strings.Contains(b, "..") || strings.Contains(b, "@{") || strings.ContainsAny(b, " ~^:?*[\\\x00\t\n") {
		return &InvalidInputError{Field: "branch", Reason: fmt.Sprintf("%q is not a valid branch name", b)}
	}
	return nil
}

func remoteRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

// fetch updates refs/remotes/origin/<branch>; the caller holds c.mu.
func (c *cachedRepo) fetch(ctx context.Context, r Remote, branch string) error {
	auth, err := r.Auth.transportAuth(r.URL, c.dir+".known_hosts")
	if err != nil {
		return err
	}
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, remoteRef(branch)))
	err = c.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: r.URL, RefSpecs: []config.RefSpec{spec}, Auth: auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if errors.Is(err, git.NoMatchingRefSpecError{}) || errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return fmt.Errorf("branch %q: %w", branch, ErrNotFound)
		}
		return sanitize("fetch "+branch, err, r.Auth.secrets())
	}
	return nil
}

func (c *cachedRepo) head(branch string) (plumbing.Hash, error) {
	ref, err := c.repo.Storer.Reference(remoteRef(branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("branch %q: %w", branch, ErrNotFound)
	}
	return ref.Hash(), nil
}

// ReadFiles fetches branch and returns the YAML files under dir at its
// head, read from the object store (no checkout). A missing dir yields an
// empty snapshot; a missing branch an error wrapping ErrNotFound.
func (w *Workspace) ReadFiles(ctx context.Context, r Remote, branch, dir string) (*Snapshot, error) {
	r, err := r.normalize()
	if err != nil {
		return nil, err
	}
	if err := checkBranch(branch); err != nil {
		return nil, err
	}
	c, err := w.open(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := w.opts.Now()
	if last, ok := c.fetched[branch]; !ok || w.opts.ReadFetchInterval <= 0 || now.Sub(last) >= w.opts.ReadFetchInterval {
		if err := c.fetch(ctx, r, branch); err != nil {
			return nil, err
		}
		c.fetched[branch] = now
	}
	h, err := c.head(branch)
	if err != nil {
		return nil, err
	}
	return c.snapshot(h, dir)
}

// ReadFilesAt returns the YAML files under dir at a revision of branch
// (e.g. the base revision of an edit), fetching branch first if the
// revision is not in the cache yet (another replica made it). A revision
// that is not a known commit is an *InvalidInputError.
func (w *Workspace) ReadFilesAt(ctx context.Context, r Remote, branch, revision, dir string) (*Snapshot, error) {
	var snap *Snapshot
	err := w.atCommit(ctx, r, branch, revision, "baseRevision", func(c *cachedRepo, commit *object.Commit) (err error) {
		snap, err = c.snapshot(commit.Hash, dir)
		return err
	})
	if errors.Is(err, ErrNotFound) && plumbing.IsHash(revision) {
		return nil, &InvalidInputError{Field: "baseRevision", Reason: fmt.Sprintf("revision %s is unknown", revision)}
	}
	return snap, err
}

// atCommit runs fn on a commit of branch with the repository locked,
// fetching branch first when the commit is not in the cache yet (it was
// pushed from elsewhere). A revision that is not a SHA is an
// *InvalidInputError on field; one the remote does not have wraps
// ErrNotFound.
func (w *Workspace) atCommit(ctx context.Context, r Remote, branch, revision, field string, fn func(*cachedRepo, *object.Commit) error) error {
	r, err := r.normalize()
	if err != nil {
		return err
	}
	if err := checkBranch(branch); err != nil {
		return err
	}
	if !plumbing.IsHash(revision) {
		return &InvalidInputError{Field: field, Reason: fmt.Sprintf("%q is not a commit SHA", revision)}
	}
	c, err := w.open(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := plumbing.NewHash(revision)
	commit, err := c.repo.CommitObject(h)
	if err != nil {
		if err := c.fetch(ctx, r, branch); err != nil {
			return err
		}
		c.fetched[branch] = w.opts.Now()
		if commit, err = c.repo.CommitObject(h); err != nil {
			return fmt.Errorf("commit %s of %s: %w", revision, branch, ErrNotFound)
		}
	}
	return fn(c, commit)
}

func (c *cachedRepo) snapshot(h plumbing.Hash, dir string) (*Snapshot, error) {
	if h.IsZero() {
		return &Snapshot{Dir: cleanDir(dir)}, nil // a branch about to be created
	}
	commit, err := c.repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", h, err)
	}
	d := cleanDir(dir)
	s := &Snapshot{Revision: h.String(), Dir: d}
	if d != "" {
		tree, err = tree.Tree(d)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d, err)
		}
	}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", d, err)
		}
		if !entry.Mode.IsFile() || !IsManifest(name) {
			continue
		}
		blob, err := c.repo.BlobObject(entry.Hash)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		rd, err := blob.Reader()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		content, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		p := name
		if d != "" {
			p = d + "/" + name
		}
		s.Files = append(s.Files, File{Path: p, Content: content, BlobID: entry.Hash.String()})
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
	return s, nil
}

// Change is what an EditFunc wants committed.
type Change struct {
	// Files maps repository-relative paths (inside the request's Dir) to
	// their new content; a nil value deletes the file.
	Files   map[string][]byte
	Message string
}

// EditFunc computes a change from the files at the branch head. It is
// called again on the new head when a push loses a race, so it must be a
// pure function of its input. Errors it returns are passed through.
type EditFunc func(ctx context.Context, head *Snapshot) (*Change, error)

// CommitRequest describes one commit.
type CommitRequest struct {
	Remote Remote
	Branch string
	Dir    string // the environment's path; the edit sees and may change only files under it
	Author Signature
	Edit   EditFunc
	// CreateBranch lets Commit create Branch when the remote lacks it:
	// from the head of From, or as a root commit when From is empty (the
	// first commit of an empty repository).
	CreateBranch bool
	From         string
}

// CommitResult describes a pushed commit.
type CommitResult struct {
	SHA      string
	Parent   string
	Branch   string
	Attempts int
	Files    []string // changed paths
	Author   Signature
}

// Commit runs req.Edit on the branch head, commits the change on top of it
// (author = req.Author, committer = the workspace's committer) and pushes.
// When the push is rejected because the branch moved, it fetches, runs Edit
// again on the new head and retries, with bounded exponential backoff.
// Work on one remote branch is serialized in-process and through Locker.
//
// Errors: whatever Edit returns (e.g. *ConflictError, *InvalidInputError,
// ErrNotFound); ErrNoChange when the change leaves every file as it is;
// *InvalidInputError for paths outside Dir; ErrAuth when credentials are
// refused. Error texts never contain credentials.
func (w *Workspace) Commit(ctx context.Context, req CommitRequest) (*CommitResult, error) {
	r, err := req.Remote.normalize()
	if err != nil {
		return nil, err
	}
	if err := checkBranch(req.Branch); err != nil {
		return nil, err
	}
	if req.From != "" {
		if err := checkBranch(req.From); err != nil {
			return nil, err
		}
	}
	if req.Author.Name == "" || req.Author.Email == "" {
		return nil, &InvalidInputError{Field: "author", Reason: "name and email are required"}
	}
	c, err := w.open(r)
	if err != nil {
		return nil, err
	}
	unlock, err := w.lock(ctx, r.URL, req.Branch)
	if err != nil {
		return nil, err
	}
	defer unlock()

	backoff := w.opts.BaseBackoff
	for attempt := 1; ; attempt++ {
		res, retry, err := w.attempt(ctx, c, r, req)
		if err == nil {
			res.Attempts = attempt
			return res, nil
		}
		if !retry || attempt >= w.opts.MaxAttempts {
			if retry {
				return nil, fmt.Errorf("push %s: branch kept moving, gave up after %d attempts: %w", req.Branch, attempt, err)
			}
			return nil, err
		}
		d := backoff/2 + rand.N(backoff/2+1)
		w.opts.Logger.InfoContext(ctx, "gitrepo: push lost a race, retrying on the new head",
			"remote", RedactURL(r.URL), "branch", req.Branch, "attempt", attempt, "delay", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("push %s: %w", req.Branch, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// attempt does one fetch-edit-commit-push round. retry reports whether the
// failure was the branch moving under us.
func (w *Workspace) attempt(ctx context.Context, c *cachedRepo, r Remote, req CommitRequest) (*CommitResult, bool, error) {
	secrets := r.Auth.secrets()
	c.mu.Lock()
	// expect is what the remote branch must still point at when we push
	// (zero: the branch must not exist yet).
	var parent, expect plumbing.Hash
	var snap *Snapshot
	err := c.fetch(ctx, r, req.Branch)
	switch {
	case err == nil:
		parent, err = c.head(req.Branch)
		expect = parent
	case errors.Is(err, ErrNotFound) && req.CreateBranch && req.From != "":
		if err = c.fetch(ctx, r, req.From); err == nil {
			parent, err = c.head(req.From)
		}
	case errors.Is(err, ErrNotFound) && req.CreateBranch:
		err = nil // a root commit
	}
	if err == nil {
		snap, err = c.snapshot(parent, req.Dir)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, false, err
	}

	change, err := req.Edit(ctx, snap)
	if err != nil {
		return nil, false, err
	}
	if change == nil || len(change.Files) == 0 {
		return nil, false, ErrNoChange
	}
	files := make(map[string][]byte, len(change.Files))
	for p, content := range change.Files {
		cp, err := CleanPath(req.Dir, p)
		if err != nil {
			return nil, false, err
		}
		files[cp] = content
	}
	msg := strings.TrimSpace(change.Message)
	if msg == "" {
		return nil, false, &InvalidInputError{Field: "message", Reason: "commit message is empty"}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var rootTree plumbing.Hash
	var parents []plumbing.Hash
	if !parent.IsZero() {
		commit, err := c.repo.CommitObject(parent)
		if err != nil {
			return nil, false, fmt.Errorf("read commit %s: %w", parent, err)
		}
		rootTree, parents = commit.TreeHash, []plumbing.Hash{parent}
	}
	st := c.repo.Storer
	ow := &objWriter{st: st}
	treeHash, changed, err := writeTree(ow, rootTree, files)
	if err != nil {
		return nil, false, fmt.Errorf("write tree: %w", err)
	}
	if len(changed) == 0 || treeHash.IsZero() {
		return nil, false, ErrNoChange
	}
	now := w.opts.Now()
	nc := &object.Commit{
		Author:       object.Signature{Name: req.Author.Name, Email: req.Author.Email, When: now},
		Committer:    object.Signature{Name: w.opts.Committer.Name, Email: w.opts.Committer.Email, When: now},
		Message:      msg + "\n",
		TreeHash:     treeHash,
		ParentHashes: parents,
	}
	obj := st.NewEncodedObject()
	if err := nc.Encode(obj); err != nil {
		return nil, false, fmt.Errorf("encode commit: %w", err)
	}
	sha, err := ow.set(obj)
	if err != nil {
		return nil, false, fmt.Errorf("store commit: %w", err)
	}
	auth, err := r.Auth.transportAuth(r.URL, c.dir+".known_hosts")
	if err != nil {
		return nil, false, err
	}
	if err := push(ctx, r.URL, auth, st, req.Branch, expect, sha, ow.written); err != nil {
		var moved *branchMovedError
		return nil, errors.As(err, &moved), sanitize("push "+req.Branch, err, secrets)
	}
	// Our commit is now the remote head.
	if err := st.SetReference(plumbing.NewHashReference(remoteRef(req.Branch), sha)); err != nil {
		return nil, false, fmt.Errorf("set %s: %w", remoteRef(req.Branch), err)
	}
	res := &CommitResult{SHA: sha.String(), Branch: req.Branch, Files: changed, Author: req.Author}
	if !parent.IsZero() {
		res.Parent = parent.String()
	}
	return res, false, nil
}

// writeTree writes the trees for root with files changed (nil content
// deletes) and returns the new root hash and the paths that really changed.
// Only the trees along changed paths are rewritten.
func writeTree(ow *objWriter, root plumbing.Hash, files map[string][]byte) (plumbing.Hash, []string, error) {
	var changed []string
	h, err := writeSubtree(ow, root, "", files, &changed)
	sort.Strings(changed)
	return h, changed, err
}

func writeSubtree(ow *objWriter, h plumbing.Hash, prefix string, files map[string][]byte, changed *[]string) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !h.IsZero() {
		t, err := object.GetTree(ow.st, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", prefix, err)
		}
		entries = append(entries, t.Entries...)
	}
	// Group the changes by their first path element.
	direct := map[string][]byte{}
	deleted := map[string]bool{}
	sub := map[string]map[string][]byte{}
	for p, content := range files {
		name, rest, nested := strings.Cut(p, "/")
		if nested {
			if sub[name] == nil {
				sub[name] = map[string][]byte{}
			}
			sub[name][rest] = content
			continue
		}
		if content == nil {
			deleted[name] = true
		} else {
			direct[name] = content
		}
	}
	find := func(name string) int {
		for i, e := range entries {
			if e.Name == name {
				return i
			}
		}
		return -1
	}
	dirty := false
	for name, content := range direct {
		bh, err := ow.blob(content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		i := find(name)
		switch {
		case i < 0:
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: bh})
		case entries[i].Hash == bh && entries[i].Mode.IsFile():
			continue
		case !entries[i].Mode.IsFile():
			return plumbing.ZeroHash, &InvalidInputError{Field: "path", Reason: prefix + name + " is a directory"}
		default:
			entries[i].Hash = bh
		}
		dirty = true
		*changed = append(*changed, prefix+name)
	}
	for name := range deleted {
		if i := find(name); i >= 0 && entries[i].Mode.IsFile() {
			entries = append(entries[:i], entries[i+1:]...)
			dirty = true
			*changed = append(*changed, prefix+name)
		}
	}
	for name, m := range sub {
		i := find(name)
		old := plumbing.ZeroHash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, &InvalidInputError{Field: "path", Reason: prefix + name + " is a file"}
			}
			old = entries[i].Hash
		}
		nh, err := writeSubtree(ow, old, prefix+name+"/", m, changed)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		switch {
		case nh == old:
			continue
		case nh.IsZero() && i >= 0:
			entries = append(entries[:i], entries[i+1:]...)
		case nh.IsZero():
			continue
		case i >= 0:
			entries[i].Hash = nh
		default:
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: nh})
		}
		dirty = true
	}
	if !dirty {
		return h, nil
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	// Git orders entries by name, directories as if followed by "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	obj := ow.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree %s: %w", prefix, err)
	}
	nh, err := ow.set(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tree %s: %w", prefix, err)
	}
	return nh, nil
}

// objWriter stores new objects and remembers them: they are exactly what
// the push must send.
type objWriter struct {
	st      storer.EncodedObjectStorer
	written []plumbing.Hash
}

func (ow *objWriter) set(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	h, err := ow.st.SetEncodedObject(obj)
	if err == nil {
		ow.written = append(ow.written, h)
	}
	return h, err
}

func (ow *objWriter) blob(content []byte) (plumbing.Hash, error) {
	obj := ow.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("blob writer: %w", err)
	}
	if _, err := wr.Write(content); err != nil {
		wr.Close()
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	h, err := ow.set(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

// keyedMutex is a set of mutexes by key that can be acquired with a
// context; entries are removed when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{}
	refs int
}

func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.ch
			release()
		})
	}, nil
}
