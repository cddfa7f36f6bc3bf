package tracker

import "strings"

// SHAOf returns the commit SHA of a Flux source revision, lower-cased:
// "main@sha1:87e4…" and "sha1:87e4…" (Flux v1 API) as well as the legacy
// "main/87e4…" give "87e4…". A bare hexadecimal SHA is returned as is.
// It returns "" when the revision names no Git commit (a chart version, an
// OCI digest).
func SHAOf(revision string) string {
	r := strings.TrimSpace(revision)
	switch {
	case r == "":
		return ""
	case strings.Contains(r, "sha1:"):
		r = r[strings.LastIndex(r, "sha1:")+len("sha1:"):]
	case strings.Contains(r, "sha256:"):
		// SHA-256 object format repositories: same shape, longer hash.
		r = r[strings.LastIndex(r, "sha256:")+len("sha256:"):]
	case strings.Contains(r, "/"):
		r = r[strings.LastIndex(r, "/")+1:]
	}
	r = strings.ToLower(r)
	if len(r) < 7 || !isHex(r) {
		return ""
	}
	return r
}

// RevisionHas reports whether a Flux revision names the commit sha: the
// revision's SHA equals sha, or one is an abbreviation (7+ characters) of
// the other.
func RevisionHas(revision, sha string) bool {
	got := SHAOf(revision)
	want := strings.ToLower(strings.TrimSpace(sha))
	if got == "" || len(want) < 7 || !isHex(want) {
		return false
	}
	if len(got) < len(want) {
		got, want = want, got
	}
	return strings.HasPrefix(got, want)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// shortSHA abbreviates a commit SHA for messages.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
