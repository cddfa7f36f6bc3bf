package fluxgate

import (
	"encoding/base64"
	"strings"
)

// DefaultPageSize and MaxPageSize bound every listing.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Page asks for First items after the opaque cursor After (keyset
// pagination: cursors stay valid while rows are inserted).
type Page struct {
	First int
	After string
}

// Limit returns the effective page size.
func (p Page) Limit() int {
	switch {
	case p.First <= 0:
		return DefaultPageSize
	case p.First > MaxPageSize:
		return MaxPageSize
	}
	return p.First
}

// Validate checks First and decodes After, returning the key it names.
func (p Page) Validate() (key string, err error) {
	if p.First < 0 || p.First > MaxPageSize {
		return "", InvalidField("first", "first must be between 0 and %d", MaxPageSize)
	}
	if p.After == "" {
		return "", nil
	}
	key, ok := DecodeCursor(p.After)
	if !ok {
		return "", InvalidField("after", "after is not a valid cursor")
	}
	return key, nil
}

// PageInfo describes the page returned.
type PageInfo struct {
	HasNextPage bool
	EndCursor   string
}

const cursorPrefix = "cursor:"

// EncodeCursor makes an opaque cursor from a key.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

// DecodeCursor returns the key inside a cursor made by EncodeCursor.
func DecodeCursor(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return "", false
	}
	return strings.TrimPrefix(string(b), cursorPrefix), true
}
