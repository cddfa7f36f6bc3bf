package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

// Rollback restores the manifests under an environment's directory to
// what an earlier commit had, on top of the current head. It is a reverse
// three-way merge per file: base = the files deployed now (Base), ours =
// the files at the commit rolled back to (Target), theirs = the head. So
// the rollback undoes what changed between Target and Base, and keeps what
// changed on the branch since Base where it does not overlap; a field the
// branch changed since Base that the rollback changes too is a conflict.
//
// Files Target lacks that Base has are deleted (unless the head changed
// them since Base: a conflict); files Target has that Base lacks are
// restored. With Base nil (nothing deployed since Target), the head is the
// base and the result is exactly Target's files.
type Rollback struct {
	Target *Snapshot // files at the commit rolled back to; required
	Base   *Snapshot // files at the commit deployed now; nil: the head
	// Message is the commit message (RollbackMessage).
	Message string
}

// Files computes the content to write on head: changed paths only (nil
// content deletes the file). It returns a *ConflictError listing every
// conflict across files (nothing is to be written then), ErrNoChange when
// the head already is what the rollback would write, and an
// *InvalidInputError when a file the merge combined does not validate.
func (r Rollback) Files(head *Snapshot) (map[string][]byte, error) {
	if r.Target == nil {
		return nil, &InvalidInputError{Field: "target", Reason: "no revision to roll back to"}
	}
	base := r.Base
	if base == nil {
		base = head
	}
	ours, b, theirs := r.Target.Contents(), base.Contents(), head.Contents()
	paths := map[string]bool{}
	for _, m := range []map[string][]byte{ours, b, theirs} {
		for p := range m {
			paths[p] = true
		}
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)

	out := map[string][]byte{}
	var conflicts []Conflict
	for _, p := range sorted {
		o, t, bb := present(ours, p), present(theirs, p), present(b, p)
		merged, err := yamledit.Merge3(p, bb, t, o)
		var ce *ConflictError
		if errors.As(err, &ce) {
			conflicts = append(conflicts, ce.Conflicts...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if bytes.Equal(merged, t) && (merged == nil) == (t == nil) {
			continue
		}
		out[p] = merged
	}
	if len(conflicts) > 0 {
		return nil, &ConflictError{Conflicts: conflicts}
	}
	if len(out) == 0 {
		return nil, ErrNoChange
	}
	// A file restored as the target had it was deployed before; one the
	// merge combined from both sides must validate like any edit.
	combined := map[string][]byte{}
	for p, c := range out {
		if c != nil && !bytes.Equal(c, ours[p]) {
			combined[p] = c
		}
	}
	if len(combined) > 0 {
		if err := ValidateFiles(head.Dir, combined); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// present returns m[p], or nil when p is absent (a present empty file is
// a non-nil empty slice, so "empty" and "missing" stay apart).
func present(m map[string][]byte, p string) []byte {
	c, ok := m[p]
	if !ok {
		return nil
	}
	if c == nil {
		return []byte{}
	}
	return c
}

// RollbackEdit is the EditFunc of rollbackDeployment: Rollback.Files on
// the head, committed with r.Message. When the branch moves under the
// push, Commit runs it again on the new head, so the merge is redone.
func RollbackEdit(r Rollback) EditFunc {
	return func(ctx context.Context, head *Snapshot) (*Change, error) {
		files, err := r.Files(head)
		if err != nil {
			return nil, err
		}
		return &Change{Files: files, Message: r.Message}, nil
	}
}

// RollbackMessage is the commit message of a rollback, e.g.
//
//	chore(deploy): roll back prod to 1a2b3c4 (1.4.2)
//
//	Rolled back via fluxgate by Ada Lovelace
//
// version may be empty (then the parenthesis is left out).
func RollbackMessage(env, sha, version, user string) string {
	if len(sha) > 7 {
		sha = sha[:7]
	}
	subject := "chore(deploy): roll back " + env + " to " + sha
	if v := strings.TrimSpace(version); v != "" {
		subject += " (" + v + ")"
	}
	if user == "" {
		user = "unknown user"
	}
	return subject + "\n\nRolled back via fluxgate by " + user
}
