package gitrepo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// CommitInfo is what Git records about a commit: who wrote it and why.
type CommitInfo struct {
	SHA         string
	AuthorName  string
	AuthorEmail string
	// Subject is the message's first line; Body the rest, trimmed.
	Subject string
	Body    string
	When    time.Time
}

// CommitInfo reads a commit of branch, fetching the branch first when the
// commit is not in the cache yet (it was pushed from outside). A SHA that
// is not a commit of the remote is an error wrapping ErrNotFound.
func (w *Workspace) CommitInfo(ctx context.Context, r Remote, branch, sha string) (*CommitInfo, error) {
	r, err := r.normalize()
	if err != nil {
		return nil, err
	}
	if err := checkBranch(branch); err != nil {
		return nil, err
	}
	if !plumbing.IsHash(sha) {
		return nil, &InvalidInputError{Field: "commitSha", Reason: fmt.Sprintf("%q is not a commit SHA", sha)}
	}
	c, err := w.open(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := plumbing.NewHash(sha)
	commit, err := c.repo.CommitObject(h)
	if err != nil {
		if err := c.fetch(ctx, r, branch); err != nil {
			return nil, err
		}
		c.fetched[branch] = w.opts.Now()
		if commit, err = c.repo.CommitObject(h); err != nil {
			return nil, fmt.Errorf("commit %s of %s: %w", sha, branch, ErrNotFound)
		}
	}
	subject, body, _ := strings.Cut(strings.TrimSpace(commit.Message), "\n")
	return &CommitInfo{
		SHA: commit.Hash.String(), AuthorName: commit.Author.Name, AuthorEmail: commit.Author.Email,
		Subject: strings.TrimSpace(subject), Body: strings.TrimSpace(body), When: commit.Author.When,
	}, nil
}
