package gitrepo

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

// Errors the service layer branches on (see docs/gitops-editing.md):
//
//	*InvalidInputError, *ValidationError, ErrNoChange  → INVALID_INPUT
//	*ConflictError                                      → CONFLICT
//	ErrNotFound (errors.Is)                             → NOT_FOUND
//	ErrAuth (errors.Is)                                 → the repository refused the credentials
type (
	InvalidInputError = yamledit.InvalidInputError
	ValidationError   = yamledit.ValidationError
	ConflictError     = yamledit.ConflictError
	Conflict          = yamledit.Conflict
)

var (
	ErrNotFound = yamledit.ErrNotFound
	ErrNoChange = yamledit.ErrNoChange
	// ErrAuth is wrapped by errors caused by missing or rejected credentials.
	ErrAuth = errors.New("git authentication failed")
)

var userinfoRe = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]*@`)

// RedactURL removes userinfo (user:token@) from every URL in s.
func RedactURL(s string) string {
	return userinfoRe.ReplaceAllString(s, "$1")
}

// Redact removes URL userinfo and every known secret (also in URL- and
// base64-encoded form) from s.
func Redact(s string, secrets ...string) string {
	s = RedactURL(s)
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue
		}
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), base64.StdEncoding.EncodeToString([]byte(sec))} {
			s = strings.ReplaceAll(s, form, "[REDACTED]")
		}
	}
	return s
}

// gitError is an error from go-git with its text scrubbed of credentials.
// It keeps only well-known sentinel errors in its chain, never the original
// error, so unwrapping cannot reveal a secret either.
type gitError struct {
	msg  string
	kind []error
}

func (e *gitError) Error() string   { return e.msg }
func (e *gitError) Unwrap() []error { return e.kind }

// sanitize wraps err (from go-git) as "op: message" with secrets removed.
func sanitize(op string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	ge := &gitError{msg: Redact(op+": "+err.Error(), secrets...)}
	for _, k := range []error{
		context.Canceled, context.DeadlineExceeded,
		transport.ErrRepositoryNotFound, transport.ErrEmptyRemoteRepository,
		plumbing.ErrReferenceNotFound, plumbing.ErrObjectNotFound, object.ErrDirectoryNotFound,
		git.ErrRepositoryNotExists, git.NoErrAlreadyUpToDate,
	} {
		if errors.Is(err, k) {
			ge.kind = append(ge.kind, k)
		}
	}
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		ge.kind = append(ge.kind, ErrAuth)
	}
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		ge.kind = append(ge.kind, ErrNotFound)
	}
	return ge
}
