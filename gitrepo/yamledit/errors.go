package yamledit

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned (wrapped) when the Deployment or container to edit
// does not exist. Callers map it to NOT_FOUND.
var ErrNotFound = errors.New("not found")

// ErrNoChange is returned when an edit changes nothing. Callers map it to
// INVALID_INPUT ("empty change").
var ErrNoChange = errors.New("empty change")

// InvalidInputError is bad user input; Field names the offending input field
// (e.g. "env[0].name", "replicas", "yaml"). Callers map it to INVALID_INPUT.
type InvalidInputError struct {
	Field  string
	Reason string
	Line   int // 1-based line in the YAML, when known
	Column int
}

func (e *InvalidInputError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	if e.Field != "" {
		b.WriteString(e.Field)
	} else {
		b.WriteString("input")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func invalid(field, format string, args ...any) error {
	return &InvalidInputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// AsInvalidInput converts parse failures (syntax errors, limits) into an
// *InvalidInputError for field; other errors are returned unchanged.
func AsInvalidInput(field string, err error) error {
	var se *SyntaxError
	var le *LimitError
	switch {
	case errors.As(err, &se):
		return &InvalidInputError{Field: field, Reason: se.Msg, Line: se.Line, Column: se.Column}
	case errors.As(err, &le):
		return &InvalidInputError{Field: field, Reason: le.Msg}
	}
	return err
}

// Conflict is one field changed on both sides of a merge to different
// values. Base, Theirs and Ours are YAML renderings ("" when absent).
type Conflict struct {
	File     string `json:"file,omitempty"`
	Resource string `json:"resource,omitempty"` // e.g. "Deployment/web"
	Path     string `json:"path"`               // e.g. "spec.template.spec.containers[name=web].image"
	Base     string `json:"base"`
	Theirs   string `json:"theirs"`
	Ours     string `json:"ours"`
}

// ConflictError is returned when a three-way merge has conflicts; nothing
// was written. Callers map it to CONFLICT and return Conflicts.
type ConflictError struct {
	Conflicts []Conflict
}

func (e *ConflictError) Error() string {
	paths := make([]string, 0, len(e.Conflicts))
	for _, c := range e.Conflicts {
		p := c.Path
		if c.Resource != "" {
			p = c.Resource + ":" + p
		}
		if c.File != "" {
			p = c.File + ":" + p
		}
		paths = append(paths, p)
	}
	return fmt.Sprintf("merge conflict on %d field(s): %s", len(e.Conflicts), strings.Join(paths, ", "))
}
