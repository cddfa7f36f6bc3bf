package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fluxgate/fluxgate"
)

// extensionCodes maps domain codes to extensions.code.
var extensionCodes = map[string]string{
	fluxgate.ECONFLICT:        "CONFLICT",
	fluxgate.EINTERNAL:        "INTERNAL",
	fluxgate.EINVALID:         "INVALID_INPUT",
	fluxgate.ENOTFOUND:        "NOT_FOUND",
	fluxgate.EFORBIDDEN:       "FORBIDDEN",
	fluxgate.EUNAUTHENTICATED: "UNAUTHENTICATED",
	fluxgate.EUNAVAILABLE:     "UNAVAILABLE",
}

// errorPresenter turns any resolver error into a GraphQL error with
// extensions.code. Internal errors are logged with the request id and the
// client sees only "internal error".
func errorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// Parse, validation and gqlgen's own errors: already shaped,
			// except that a variable that does not coerce (a bad enum
			// value, a wrong type) is bad input naming its field.
			if field, ok := variableField(gqlErr.Path); ok {
				gqlErr.Extensions = map[string]any{"code": "INVALID_INPUT", "field": field}
			}
			return gqlErr
		}
		presented := graphql.DefaultErrorPresenter(ctx, err)
		code := fluxgate.ErrorCode(err)
		ext := map[string]any{"code": extensionCodes[code]}
		reqID := fluxgate.RequestIDFromContext(ctx)
		if code == fluxgate.EINTERNAL {
			logger.ErrorContext(ctx, "internal error", "request_id", reqID, "path", presented.Path.String(), "err", err)
			presented.Message = "internal error"
			if reqID != "" {
				ext["requestId"] = reqID
			}
		} else {
			presented.Message = fluxgate.ErrorMessage(err)
			if f := fluxgate.ErrorField(err); f != "" {
				ext["field"] = f
			}
		}
		presented.Extensions = ext
		return presented
	}
}

// recoverFunc turns a panic in a resolver into an internal error.
func recoverFunc(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in resolver", "request_id", fluxgate.RequestIDFromContext(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return fmt.Errorf("panic: %v", p)
	}
}

// variableField turns the path of a variable coercion error, such as
// ["variable", "in", "gitops", "syncInterval"], into the input field
// "gitops.syncInterval" (the variable's name when it is not an object).
func variableField(path ast.Path) (string, bool) {
	if len(path) < 2 || path[0] != ast.PathName("variable") {
		return "", false
	}
	parts := make([]string, 0, len(path))
	for _, el := range path[2:] {
		switch v := el.(type) {
		case ast.PathName:
			parts = append(parts, string(v))
		case ast.PathIndex:
			if len(parts) > 0 {
				parts[len(parts)-1] += fmt.Sprintf("[%d]", int(v))
			}
		}
	}
	if len(parts) == 0 {
		return fmt.Sprint(path[1]), true
	}
	return strings.Join(parts, "."), true
}
