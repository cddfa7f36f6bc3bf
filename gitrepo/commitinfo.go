package gitrepo

import (
	"context"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
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
	var info *CommitInfo
	err := w.atCommit(ctx, r, branch, sha, "commitSha", func(_ *cachedRepo, commit *object.Commit) error {
		subject, body, _ := strings.Cut(strings.TrimSpace(commit.Message), "\n")
		info = &CommitInfo{
			SHA: commit.Hash.String(), AuthorName: commit.Author.Name, AuthorEmail: commit.Author.Email,
			Subject: strings.TrimSpace(subject), Body: strings.TrimSpace(body), When: commit.Author.When,
		}
		return nil
	})
	return info, err
}
