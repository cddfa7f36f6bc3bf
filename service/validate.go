package service

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fluxgate/fluxgate"
)

// validateDNSLabel checks a name that becomes a Kubernetes name.
func validateDNSLabel(field, v string) error {
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		return fluxgate.InvalidField(field, "%s %q is not a valid name: %s", field, v, errs[0])
	}
	return nil
}

// validateDNSSubdomain checks an object name such as a health check target.
func validateDNSSubdomain(field, v string) error {
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return fluxgate.InvalidField(field, "%s %q is not a valid name: %s", field, v, errs[0])
	}
	return nil
}

// validateLength checks a free-text field's length in characters.
func validateLength(field, v string, min, max int) error {
	n := utf8.RuneCountInString(v)
	if n < min || n > max {
		if min > 0 && n == 0 {
			return fluxgate.InvalidField(field, "%s must not be empty", field)
		}
		return fluxgate.InvalidField(field, "%s must be %d to %d characters long", field, min, max)
	}
	return nil
}

var scpLikeURL = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+$`)

// validateCloneURL accepts https://host/path, ssh://[user@]host[:port]/path
// and git@host:path (scp-like). http:// is accepted only for loopback hosts
// (fluxgate's own local Git server).
func validateCloneURL(field, v string) error {
	if scpLikeURL.MatchString(v) {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Path == "" || u.Path == "/" {
		return fluxgate.InvalidField(field, "%s must be https://host/path, ssh://host/path or git@host:path", field)
	}
	switch u.Scheme {
	case "https", "ssh":
	case "http":
		h := u.Hostname()
		if h != "127.0.0.1" && h != "localhost" && h != "::1" {
			return fluxgate.InvalidField(field, "%s must use https:// or ssh:// (plain http only for loopback)", field)
		}
	default:
		return fluxgate.InvalidField(field, "%s must be https://host/path, ssh://host/path or git@host:path", field)
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword || u.Scheme != "ssh" {
			return fluxgate.InvalidField(field, "%s must not contain credentials; use a Git credentials secret", field)
		}
	}
	return nil
}

// validateDuration checks an interval such as 30s, 1m or 10m.
func validateDuration(field, v string, min time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fluxgate.InvalidField(field, "%s %q is not a duration such as 30s, 1m or 10m", field, v)
	}
	if d < min {
		return fluxgate.InvalidField(field, "%s must be at least %s", field, min)
	}
	if d > 24*time.Hour {
		return fluxgate.InvalidField(field, "%s must be at most 24h", field)
	}
	return nil
}

// validateGitPath checks a path inside a repository: relative, clean and
// never escaping the repository.
func validateGitPath(field, v string) error {
	p := strings.TrimPrefix(v, "./")
	switch {
	case v == "":
		return fluxgate.InvalidField(field, "%s must not be empty", field)
	case strings.HasPrefix(v, "/"):
		return fluxgate.InvalidField(field, "%s must be relative to the repository root", field)
	case strings.Contains(v, "\\"), strings.ContainsRune(v, 0):
		return fluxgate.InvalidField(field, "%s contains invalid characters", field)
	case len(v) > 512:
		return fluxgate.InvalidField(field, "%s must be at most 512 characters", field)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fluxgate.InvalidField(field, "%s must not leave the repository (no ..)", field)
		}
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		return fluxgate.InvalidField(field, "%s must not leave the repository (no ..)", field)
	}
	return nil
}

var badRefChars = regexp.MustCompile("[\x00-\x20~^:?*\\[\\\\\x7f]")

// validateBranch applies git check-ref-format's rules for a branch name.
func validateBranch(field, v string) error {
	bad := v == "" || len(v) > 255 || badRefChars.MatchString(v) ||
		strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.HasSuffix(v, ".") ||
		strings.Contains(v, "..") || strings.Contains(v, "//") || strings.Contains(v, "@{") ||
		strings.HasPrefix(v, "-") || v == "@" || strings.HasSuffix(v, ".lock")
	for _, seg := range strings.Split(v, "/") {
		if strings.HasPrefix(seg, ".") {
			bad = true
		}
	}
	if bad {
		return fluxgate.InvalidField(field, "%s %q is not a valid branch name", field, v)
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
