package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/fluxgate/fluxgate"
)

func uuidV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only when the system's randomness fails; keep the store usable.
		return uuid.NewString()
	}
	return id.String()
}

// scanner is a row (*sqlx.Row or *sqlx.Rows).
type scanner interface {
	Scan(dest ...any) error
}

// selectAll runs a query and scans every row with scan.
func selectAll[T any](ctx context.Context, q sqlx.QueryerContext, query string, scan func(scanner) (*T, error), args ...any) ([]*T, error) {
	rows, err := q.QueryxContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// timeArg is a time as stored: UTC, microseconds.
func timeArg(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timePtrArg is a nullable time as stored.
func timePtrArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return timeArg(*t)
}

// strPtrArg stores a nil or empty optional reference as NULL.
func strPtrArg(s *string) any {
	if s == nil || *s == "" {
		return nil
	}
	return *s
}

// jsonArg marshals v for a JSON column (JSONB on PostgreSQL, TEXT on SQLite).
func jsonArg(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode json column: %w", err)
	}
	return string(b), nil
}

// rawJSONArg stores raw JSON, "null" when empty; invalid JSON is EINVALID.
func rawJSONArg(field string, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "null", nil
	}
	if !json.Valid(raw) {
		return "", fluxgate.InvalidField(field, "%s is not valid JSON", field)
	}
	return string(raw), nil
}

// timeCol scans a NOT NULL time column into a UTC time.Time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	t, ok, err := parseTimeValue(src)
	if err != nil {
		return err
	}
	if !ok {
		*c.t = time.Time{}
		return nil
	}
	*c.t = t
	return nil
}

// nullTimeCol scans a nullable time column into a *time.Time.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(src any) error {
	t, ok, err := parseTimeValue(src)
	if err != nil {
		return err
	}
	if !ok {
		*c.t = nil
		return nil
	}
	*c.t = &t
	return nil
}

// sqliteTimeLayouts are the text forms a SQLite time column may hold.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

func parseTimeValue(src any) (time.Time, bool, error) {
	var s string
	switch v := src.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return v.UTC(), true, nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return time.Time{}, false, fmt.Errorf("scan time: unsupported type %T", src)
	}
	for _, layout := range sqliteTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("scan time: cannot parse %q", s)
}

// nullStrCol scans a nullable text column into a *string (nil for NULL).
type nullStrCol struct{ s **string }

func (c nullStrCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.s = nil
	case string:
		*c.s = &v
	case []byte:
		s := string(v)
		*c.s = &s
	default:
		return fmt.Errorf("scan text: unsupported type %T", src)
	}
	return nil
}

// jsonCol scans a JSON column into v (a pointer); NULL leaves v untouched.
type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil || b == nil {
		return err
	}
	if err := json.Unmarshal(b, c.v); err != nil {
		return fmt.Errorf("scan json column: %w", err)
	}
	return nil
}

// rawJSONCol scans a JSON column into a json.RawMessage, compacted; JSON
// null becomes a nil message.
type rawJSONCol struct{ v *json.RawMessage }

func (c rawJSONCol) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil {
		return err
	}
	if b == nil || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*c.v = nil
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return fmt.Errorf("scan json column: %w", err)
	}
	*c.v = json.RawMessage(buf.Bytes())
	return nil
}

func jsonBytes(src any) ([]byte, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	case []byte:
		return bytes.Clone(v), nil
	}
	return nil, fmt.Errorf("scan json column: unsupported type %T", src)
}

// pageArgs validates a page and returns its after-key and limit.
func pageArgs(p fluxgate.Page) (after string, limit int, err error) {
	after, err = p.Validate()
	if err != nil {
		return "", 0, err
	}
	return after, p.Limit(), nil
}

// trimPage cuts a result fetched with limit+1 rows to limit and builds the
// PageInfo, the cursor naming the last row's key.
func trimPage[T any](items []*T, limit int, key func(*T) string) ([]*T, fluxgate.PageInfo) {
	var info fluxgate.PageInfo
	if len(items) > limit {
		items = items[:limit]
		info.HasNextPage = true
	}
	if len(items) > 0 {
		info.EndCursor = fluxgate.EncodeCursor(key(items[len(items)-1]))
	}
	return items, info
}
