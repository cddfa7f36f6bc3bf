package fluxgate

import (
	"errors"
	"fmt"
)

// Error codes. They are stable: the GraphQL edge maps each one to
// extensions.code, and clients branch on them.
const (
	ECONFLICT        = "conflict"        // unique violation, stale revision, merge conflict
	EINTERNAL        = "internal"        // anything unexpected; never shown to clients
	EINVALID         = "invalid"         // bad input; Field names the offending input field
	ENOTFOUND        = "not_found"       // entity does not exist or is not visible to the caller
	EFORBIDDEN       = "forbidden"       // authenticated but not allowed
	EUNAUTHENTICATED = "unauthenticated" // no or bad credentials
	EUNAVAILABLE     = "unavailable"     // a dependency (cluster, git remote) is not ready yet
)

// Error is fluxgate's application error. Code is one of the E* constants;
// Message is safe to show to an end user; Field, when set, names the input
// field at fault (for EINVALID).
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("fluxgate error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("fluxgate error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an EINVALID error that names the offending field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a nil
// error and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Internal errors are
// hidden behind a generic message.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the input field named by err, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
