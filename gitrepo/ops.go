package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

// DeployRequest is a UI-first deploy: the fields of the deploy form.
type DeployRequest struct {
	// Deployment names the Deployment; empty selects the only one under
	// the environment's directory.
	Deployment string
	// Container names the container; empty selects the first.
	Container string
	Image     *string
	Replicas  *int32
	Env       []yamledit.EnvVar
	RemoveEnv []string
	// User is who deploys, named in the commit message body.
	User string
}

func (d DeployRequest) edit() yamledit.DeploymentEdit {
	e := yamledit.DeploymentEdit{Name: d.Deployment, Replicas: d.Replicas}
	if d.Image != nil || len(d.Env) > 0 || len(d.RemoveEnv) > 0 {
		e.Containers = []yamledit.ContainerEdit{{Name: d.Container, Image: d.Image, Env: d.Env, RemoveEnv: d.RemoveEnv}}
	}
	return e
}

// Validate checks the request; it returns an *InvalidInputError.
func (d DeployRequest) Validate() error { return d.edit().Validate() }

// DeployMessage is the commit message of a UI deploy, e.g.
//
//	chore(deploy): update image to acme/web:2, scale to 3 replicas, update environment variables
//
//	Deployed via fluxgate by Ada Lovelace
func DeployMessage(d DeployRequest) string {
	var parts []string
	if d.Image != nil {
		parts = append(parts, "update image to "+*d.Image)
	}
	if d.Replicas != nil {
		unit := "replicas"
		if *d.Replicas == 1 {
			unit = "replica"
		}
		parts = append(parts, fmt.Sprintf("scale to %d %s", *d.Replicas, unit))
	}
	if len(d.Env) > 0 || len(d.RemoveEnv) > 0 {
		parts = append(parts, "update environment variables")
	}
	subject := "chore(deploy): " + strings.Join(parts, ", ")
	user := d.User
	if user == "" {
		user = "unknown user"
	}
	return subject + "\n\nDeployed via fluxgate by " + user
}

// DeploymentAt is a Deployment found in a snapshot.
type DeploymentAt struct {
	Path string
	View *yamledit.DeploymentView
}

// FindDeployment returns the file holding the named Deployment (or the
// only one). Errors: ErrNotFound (wrapped); *InvalidInputError when name is
// empty and several Deployments exist.
func FindDeployment(s *Snapshot, name string) (File, error) {
	var found []File
	var parseErr error
	for _, f := range s.Files {
		pf, err := yamledit.Parse(f.Content)
		if err != nil {
			parseErr = fmt.Errorf("%s: %w", f.Path, yamledit.AsInvalidInput(f.Path, err))
			continue
		}
		if _, err := pf.FindDeployment(name); err == nil {
			found = append(found, f)
		} else if !errors.Is(err, ErrNotFound) {
			var inv *InvalidInputError
			if name == "" && errors.As(err, &inv) {
				found = append(found, f, f) // several in one file
				continue
			}
			return File{}, err
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return File{}, &InvalidInputError{Field: "deployment", Reason: "several Deployments under the environment's path; say which one"}
	case parseErr != nil:
		return File{}, fmt.Errorf("deployment %q not found (and a manifest does not parse: %v): %w", name, parseErr, ErrNotFound)
	case name == "":
		return File{}, fmt.Errorf("no Deployment under %q: %w", s.Dir, ErrNotFound)
	}
	return File{}, fmt.Errorf("deployment %q under %q: %w", name, s.Dir, ErrNotFound)
}

// DeploymentViews returns the structured view of every Deployment in the
// snapshot (files that do not parse are skipped; validate them apart).
func DeploymentViews(s *Snapshot) []DeploymentAt {
	var out []DeploymentAt
	for _, f := range s.Files {
		pf, err := yamledit.Parse(f.Content)
		if err != nil {
			continue
		}
		for i := range pf.Docs {
			r := pf.Root(i)
			if r == nil {
				continue
			}
			id := yamledit.IDOf(r)
			if id.Kind != "Deployment" || id.Name == "" {
				continue
			}
			v, err := yamledit.ParseDeploymentView(f.Content, id.Name)
			if err != nil {
				continue
			}
			out = append(out, DeploymentAt{Path: f.Path, View: v})
		}
	}
	return out
}

// DeployEdit is the EditFunc of a UI deploy: it finds the Deployment under
// the environment's directory at the head, applies image / replicas / env
// keeping comments and formatting, and uses DeployMessage. When a
// kustomization file beside the Deployment (or in a parent directory inside
// the environment's directory) overrides the container's image with an
// `images:` entry, the new image is written there instead, since kustomize
// would override the Deployment's own field.
func DeployEdit(d DeployRequest) EditFunc {
	return func(ctx context.Context, head *Snapshot) (*Change, error) {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		f, err := FindDeployment(head, d.Deployment)
		if err != nil {
			return nil, err
		}
		edit := d.edit()
		files := map[string][]byte{}
		if d.Image != nil {
			k, out, err := kustomizeImage(head, f, d)
			if err != nil {
				return nil, err
			}
			if k != "" {
				files[k] = out
				edit.Containers[0].Image = nil
			}
		}
		if !edit.Empty() {
			out, err := yamledit.EditDeployment(f.Content, edit)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(out, f.Content) {
				files[f.Path] = out
			}
		}
		for p, out := range files {
			if old, _ := head.Get(p); bytes.Equal(old.Content, out) {
				delete(files, p)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("deployment already has these values: %w", ErrNoChange)
		}
		return &Change{Files: files, Message: DeployMessage(d)}, nil
	}
}

// kustomizeImage finds the kustomization that overrides the image of the
// deployed container and returns its path and new content ("" if none).
func kustomizeImage(head *Snapshot, dep File, d DeployRequest) (string, []byte, error) {
	v, err := yamledit.ParseDeploymentView(dep.Content, d.Deployment)
	if err != nil || len(v.Containers) == 0 {
		return "", nil, nil // no typed view: edit the Deployment itself
	}
	c := v.Containers[0]
	for _, vc := range v.Containers {
		if d.Container != "" && vc.Name == d.Container {
			c = vc
		}
	}
	name, _, _ := yamledit.SplitImage(c.Image)
	for dir := path.Dir(dep.Path); ; dir = path.Dir(dir) {
		for _, f := range head.Files {
			if path.Dir(f.Path) != dir || !yamledit.IsKustomization(f.Path) {
				continue
			}
			out, found, err := yamledit.SetKustomizeImage(f.Content, name, *d.Image)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			if found {
				return f.Path, out, nil
			}
		}
		if dir == head.Dir || dir == "." || dir == "/" || !strings.HasPrefix(dir, head.Dir) {
			return "", nil, nil
		}
	}
}

// StructuredChange turns a structured edit into new file content made on
// base: the file holding the Deployment, rewritten only where it changes.
func StructuredChange(base *Snapshot, e yamledit.DeploymentEdit) (map[string][]byte, error) {
	f, err := FindDeployment(base, e.Name)
	if err != nil {
		return nil, err
	}
	out, err := yamledit.EditDeployment(f.Content, e)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{f.Path: out}, nil
}

// ViewChange turns an edited structured view into new file content on base.
func ViewChange(base *Snapshot, v *yamledit.DeploymentView) (map[string][]byte, error) {
	f, err := FindDeployment(base, v.Name)
	if err != nil {
		return nil, err
	}
	out, err := yamledit.RenderDeploymentView(f.Content, v)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{f.Path: out}, nil
}

// ValidateFiles checks paths (inside dir, YAML) and contents of edited
// files. It returns an *InvalidInputError for a bad path and a
// *ValidationError listing every problem in the contents.
func ValidateFiles(dir string, files map[string][]byte) error {
	if len(files) == 0 {
		return &InvalidInputError{Field: "files", Reason: "nothing to change"}
	}
	var issues []yamledit.Issue
	for _, p := range sortedPaths(files) {
		cp, err := CleanPath(dir, p)
		if err != nil {
			return err
		}
		if !IsManifest(cp) {
			return &InvalidInputError{Field: "path", Reason: fmt.Sprintf("%q is not a .yaml or .yml file", p)}
		}
		if files[p] == nil {
			continue
		}
		for _, is := range yamledit.Validate(files[p]) {
			is.File = cp
			issues = append(issues, is)
		}
	}
	if len(issues) > 0 {
		return &ValidationError{Issues: issues}
	}
	return nil
}

func sortedPaths(m map[string][]byte) []string {
	ps := make([]string, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// ConfigChange is a config-editor commit: new content for some files,
// written from BaseRevision (Base holds the files at that revision, from
// ReadFilesAt).
type ConfigChange struct {
	Base        *Snapshot
	Files       map[string][]byte // ours; nil content deletes the file
	Message     string
	Description string
}

// merge computes the files to write on head: ours as is when head is the
// base, otherwise the three-way merge of base, head (theirs) and ours.
// Conflicts across all files are returned together.
func (c ConfigChange) merge(head *Snapshot) (map[string][]byte, []Conflict, error) {
	out := map[string][]byte{}
	var conflicts []Conflict
	base := map[string][]byte{}
	if c.Base != nil {
		base = c.Base.Contents()
	}
	theirs := head.Contents()
	for _, p := range sortedPaths(c.Files) {
		cp, err := CleanPath(head.Dir, p)
		if err != nil {
			return nil, nil, err
		}
		ours := c.Files[p]
		merged := ours
		if c.Base == nil || c.Base.Revision != head.Revision {
			merged, err = yamledit.Merge3(cp, base[cp], theirs[cp], ours)
			var ce *ConflictError
			if errors.As(err, &ce) {
				conflicts = append(conflicts, ce.Conflicts...)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
		}
		if bytes.Equal(merged, theirs[cp]) && (merged == nil) == (theirs[cp] == nil) {
			continue
		}
		out[cp] = merged
	}
	return out, conflicts, nil
}

// ConfigEdit is the EditFunc of commitConfigChanges. It validates ours,
// merges with what changed on the branch since the base revision, and
// returns a *ConflictError (nothing is written) when both sides changed the
// same field differently.
func ConfigEdit(c ConfigChange) EditFunc {
	return func(ctx context.Context, head *Snapshot) (*Change, error) {
		if strings.TrimSpace(c.Message) == "" {
			return nil, &InvalidInputError{Field: "message", Reason: "commit message is empty"}
		}
		if err := ValidateFiles(head.Dir, c.Files); err != nil {
			return nil, err
		}
		files, conflicts, err := c.merge(head)
		if err != nil {
			return nil, err
		}
		if len(conflicts) > 0 {
			return nil, &ConflictError{Conflicts: conflicts}
		}
		if len(files) == 0 {
			return nil, ErrNoChange
		}
		// What is written must validate too (a merge could combine two
		// valid edits into an invalid object).
		if err := ValidateFiles(head.Dir, files); err != nil {
			return nil, err
		}
		msg := strings.TrimSpace(c.Message)
		if d := strings.TrimSpace(c.Description); d != "" {
			msg += "\n\n" + d
		}
		return &Change{Files: files, Message: msg}, nil
	}
}

// FileDiff is the unified diff of one file.
type FileDiff struct {
	Path string
	Diff string
}

// Preview is what committing a config change would do.
type Preview struct {
	HeadRevision string
	Files        []FileDiff
	Changes      []yamledit.Change
	Impact       yamledit.Impact
	// Conflicts are set when the change cannot be merged with the head;
	// Files and Changes then cover only the files without conflicts.
	Conflicts []Conflict
}

// PreviewChange diffs a config change against the branch head: the
// unified diff per file, the field-level change list and the impact on
// pods. When head moved since the base revision, the preview is of the
// merged result. Errors: *InvalidInputError, *ValidationError.
func PreviewChange(c ConfigChange, head *Snapshot) (*Preview, error) {
	if err := ValidateFiles(head.Dir, c.Files); err != nil {
		return nil, err
	}
	files, conflicts, err := c.merge(head)
	if err != nil {
		return nil, err
	}
	p := &Preview{HeadRevision: head.Revision, Conflicts: conflicts}
	theirs := head.Contents()
	for _, path := range sortedPaths(files) {
		p.Files = append(p.Files, FileDiff{Path: path, Diff: yamledit.UnifiedDiff(path, theirs[path], files[path])})
		ch, err := yamledit.DiffFiles(path, theirs[path], files[path])
		if err != nil {
			return nil, err
		}
		p.Changes = append(p.Changes, ch...)
	}
	p.Impact = yamledit.AssessImpact(p.Changes)
	return p, nil
}
