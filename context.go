package fluxgate

import "context"

type contextKey int

const (
	userContextKey contextKey = iota + 1
	requestIDContextKey
	streamErrorContextKey
)

// NewContextWithUser returns a copy of ctx carrying the authenticated user.
func NewContextWithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userContextKey, u)
}

// UserFromContext returns the authenticated user, or nil.
func UserFromContext(ctx context.Context) *User {
	u, _ := ctx.Value(userContextKey).(*User)
	return u
}

// UserIDFromContext returns the authenticated user's id, or "".
func UserIDFromContext(ctx context.Context) string {
	if u := UserFromContext(ctx); u != nil {
		return u.ID
	}
	return ""
}

// NewContextWithRequestID returns a copy of ctx carrying a request id used
// to correlate logs with error responses.
func NewContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDContextKey, id)
}

// RequestIDFromContext returns the request id, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDContextKey).(string)
	return id
}

// NewContextWithStreamErrorFunc returns a copy of ctx in which an event
// stream that ends abnormally (its subscriber was cut off as too slow, a
// replay failed) tells f why, before its channel is closed. The GraphQL
// edge uses it to end the subscription with that error rather than with a
// "complete" the client would take for a normal end.
func NewContextWithStreamErrorFunc(ctx context.Context, f func(error)) context.Context {
	return context.WithValue(ctx, streamErrorContextKey, f)
}

// StreamErrorFuncFromContext returns the function set by
// NewContextWithStreamErrorFunc, or nil.
func StreamErrorFuncFromContext(ctx context.Context) func(error) {
	f, _ := ctx.Value(streamErrorContextKey).(func(error))
	return f
}
