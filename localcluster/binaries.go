package localcluster

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// toolsrc holds copies of the tools/kube, tools/flux and tools/kwok modules
// (every file with a ".txt" suffix; tools/sync-localcluster.sh refreshes
// them). go:embed cannot reach into a nested module, and the fluxgate binary
// must be able to build the cluster binaries far from this repository.
//
//go:embed toolsrc
var toolsrc embed.FS

// Binary is one executable of the local cluster, built from a pinned Go
// module on first use.
type Binary struct {
	// Name is the executable's name, e.g. "kube-apiserver".
	Name string
	// Version is the upstream version the binary is pinned to.
	Version string
	// Module is the directory under toolsrc holding the Go module.
	Module string
	// Package is the package to build, relative ("./etcd") or an import path
	// of a tool dependency.
	Package string
	// LDFlags are extra linker flags (version stamps).
	LDFlags string
}

// Versions of the pinned upstream components.
const (
	EtcdVersion                = "v3.7.0"
	KubernetesVersion          = "v1.37.2"
	KwokVersion                = "v0.8.0"
	SourceControllerVersion    = "v1.9.1"
	KustomizeControllerVersion = "v1.9.4"
)

const kubeLDFlags = "-X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
	" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" +
	" -X k8s.io/component-base/version.gitTreeState=clean"

// Binaries lists every binary of the local cluster, in build order (the
// kube binaries share most packages, so building them one after another
// reuses the Go build cache).
func Binaries() []Binary {
	return []Binary{
		{Name: "etcd", Version: EtcdVersion, Module: "kube", Package: "./etcd"},
		{Name: "kube-apiserver", Version: KubernetesVersion, Module: "kube", Package: "./kube-apiserver", LDFlags: kubeLDFlags},
		{Name: "kube-controller-manager", Version: KubernetesVersion, Module: "kube", Package: "./kube-controller-manager", LDFlags: kubeLDFlags},
		{Name: "kube-scheduler", Version: KubernetesVersion, Module: "kube", Package: "./kube-scheduler", LDFlags: kubeLDFlags},
		{Name: "kwok", Version: KwokVersion, Module: "kwok", Package: "sigs.k8s.io/kwok/cmd/kwok"},
		{Name: "source-controller", Version: SourceControllerVersion, Module: "flux", Package: "github.com/fluxcd/source-controller"},
		{Name: "kustomize-controller", Version: KustomizeControllerVersion, Module: "flux", Package: "github.com/fluxcd/kustomize-controller"},
	}
}

// DefaultCacheDir is where built binaries are kept: $FLUXGATE_CACHE_DIR, or
// fluxgate/bin under the user cache directory.
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv("FLUXGATE_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir: %w", err)
	}
	return filepath.Join(base, "fluxgate", "bin"), nil
}

// Builder builds the cluster binaries into a cache directory, once per
// pinned version and module content.
type Builder struct {
	// CacheDir holds the binaries (see DefaultCacheDir).
	CacheDir string
	// Progress receives one line per build ("building kube-apiserver
	// v1.37.2 (first run only)…"); nil discards.
	Progress io.Writer
	// GoCommand is the go tool to run; "go" when empty.
	GoCommand string
	// OnBuild, when set, is called after each binary is built with the time
	// the build took.
	OnBuild func(b Binary, took time.Duration)
}

// moduleHash is a short digest of a tool module's embedded files, so that
// a change of pins produces a new cache entry.
func moduleHash(module string) (string, error) {
	h := sha256.New()
	var files []string
	err := fs.WalkDir(toolsrc, path.Join("toolsrc", module), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("walk module %s: %w", module, err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := toolsrc.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", f, err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Path returns where b's executable lives in the cache (it may not exist).
func (bd *Builder) Path(b Binary) (string, error) {
	hash, err := moduleHash(b.Module)
	if err != nil {
		return "", err
	}
	return filepath.Join(bd.CacheDir, fmt.Sprintf("%s-%s-%s", b.Name, b.Version, hash)), nil
}

// Cached reports whether b is already built.
func (bd *Builder) Cached(b Binary) bool {
	p, err := bd.Path(b)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Ensure builds every binary that is not cached yet and returns the path of
// each by name. Concurrent callers (several test binaries) are serialised by
// a lock file in the cache directory.
func (bd *Builder) Ensure(ctx context.Context, bins []Binary) (map[string]string, error) {
	paths := make(map[string]string, len(bins))
	missing := false
	for _, b := range bins {
		p, err := bd.Path(b)
		if err != nil {
			return nil, err
		}
		paths[b.Name] = p
		if !bd.Cached(b) {
			missing = true
		}
	}
	if !missing {
		return paths, nil
	}
	if err := os.MkdirAll(bd.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(bd.CacheDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, b := range bins {
		if bd.Cached(b) {
			continue
		}
		if err := bd.build(ctx, b, paths[b.Name]); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func (bd *Builder) build(ctx context.Context, b Binary, out string) error {
	if bd.Progress != nil {
		fmt.Fprintf(bd.Progress, "building %s %s (first run only)…\n", b.Name, b.Version)
	}
	start := time.Now()
	hash, err := moduleHash(b.Module)
	if err != nil {
		return err
	}
	src := filepath.Join(bd.CacheDir, "src", b.Module+"-"+hash)
	if err := extractModule(b.Module, src); err != nil {
		return err
	}
	goCmd := bd.GoCommand
	if goCmd == "" {
		goCmd = "go"
	}
	tmp := out + ".tmp"
	args := []string{"build", "-trimpath", "-o", tmp}
	if b.LDFlags != "" {
		args = append(args, "-ldflags", b.LDFlags)
	}
	args = append(args, b.Package)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
	var stderr strings.Builder
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if len(msg) > 4000 {
			msg = msg[len(msg)-4000:]
		}
		if msg = strings.TrimSpace(msg); msg != "" {
			return fmt.Errorf("build %s %s: %w: %s", b.Name, b.Version, err, msg)
		}
		return fmt.Errorf("build %s %s: %w", b.Name, b.Version, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("install %s: %w", b.Name, err)
	}
	took := time.Since(start)
	if bd.Progress != nil {
		fmt.Fprintf(bd.Progress, "built %s %s in %s\n", b.Name, b.Version, took.Round(time.Second))
	}
	if bd.OnBuild != nil {
		bd.OnBuild(b, took)
	}
	return nil
}

// extractModule writes the embedded module into dir (dropping the ".txt"
// suffix of every file).
func extractModule(module, dir string) error {
	root := path.Join("toolsrc", module)
	return fs.WalkDir(toolsrc, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		target := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(rel, ".txt")))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := toolsrc.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return fmt.Errorf("write module file: %w", err)
		}
		return nil
	})
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for build lock: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
