// Package gqltypes holds the Go side of GraphQL types that the domain does
// not model: the JSON scalar and the Node interface.
package gqltypes

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"
)

// Node is any object with a global id: *fluxgate.Project, *fluxgate.User, ...
type Node any

// MarshalJSON writes raw JSON as a GraphQL value; empty becomes {}.
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(v) == 0 {
			_, _ = io.WriteString(w, "{}")
			return
		}
		_, _ = w.Write(v)
	})
}

// UnmarshalJSON accepts any GraphQL input value as JSON.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("JSON scalar: %w", err)
	}
	return b, nil
}
