package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBodyBytes bounds a GraphQL request body.
const maxBodyBytes = 1 << 20

// limitBody rejects bodies over maxBodyBytes with 413 before any parsing.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Method == http.MethodGet || isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxBodyBytes {
			writeRequestError(w, http.StatusRequestEntityTooLarge, "request body exceeds 1 MiB", "PAYLOAD_TOO_LARGE")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeRequestError(w, http.StatusRequestEntityTooLarge, "request body exceeds 1 MiB", "PAYLOAD_TOO_LARGE")
				return
			}
			writeRequestError(w, http.StatusBadRequest, "could not read request body", "BAD_REQUEST")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// writeRequestError answers a request error with no data key.
func writeRequestError(w http.ResponseWriter, status int, msg, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}}})
}

// graphQLOverHTTP shapes request errors as the GraphQL-over-HTTP spec
// says: no "data" key; with application/json, parse and validation errors
// answer 200 (gqlgen uses 422); with application/graphql-response+json,
// 400. A body that is not JSON answers 400 without echoing the body.
func graphQLOverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		rw := &requestErrorWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// requestErrorWriter passes successful responses straight through and
// buffers 4xx responses to rewrite them.
type requestErrorWriter struct {
	http.ResponseWriter
	status    int
	buffering bool
	buf       bytes.Buffer
}

func (w *requestErrorWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code == http.StatusBadRequest || code == http.StatusUnprocessableEntity {
		w.buffering = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *requestErrorWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.buffering {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *requestErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *requestErrorWriter) finish() {
	if !w.buffering {
		return
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(w.buf.Bytes(), &resp); err != nil {
		w.ResponseWriter.WriteHeader(w.status)
		_, _ = w.ResponseWriter.Write(w.buf.Bytes())
		return
	}
	delete(resp, "data")
	status := w.status
	graphqlResponse := strings.HasPrefix(w.Header().Get("Content-Type"), "application/graphql-response+json")
	switch {
	case w.status == http.StatusBadRequest && bodyDecodeError(resp):
		// Not JSON at all: keep 400, but never echo the body back.
		resp["errors"], _ = json.Marshal([]map[string]any{{"message": "request body is not a valid JSON GraphQL request", "extensions": map[string]any{"code": "BAD_REQUEST"}}})
	case graphqlResponse:
		status = http.StatusBadRequest
	default:
		status = http.StatusOK
	}
	out, _ := json.Marshal(resp)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.ResponseWriter.WriteHeader(status)
	_, _ = w.ResponseWriter.Write(out)
}

// bodyDecodeError reports whether gqlgen complained that the body was not
// decodable JSON.
func bodyDecodeError(resp map[string]json.RawMessage) bool {
	var errs []struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(resp["errors"], &errs)
	return len(errs) > 0 && strings.HasPrefix(errs[0].Message, "json request body could not be decoded")
}
