package bustest

import (
	"os"
	"testing"
)

// RedisURL returns REDIS_URL for tests that need a real Redis. Without it
// the test is skipped with a message, or fails when
// FLUXGATE_REQUIRE_REDIS=1 (CI sets it).
func RedisURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		if os.Getenv("FLUXGATE_REQUIRE_REDIS") == "1" {
			tb.Fatal("REDIS_URL is not set but FLUXGATE_REQUIRE_REDIS=1: Redis tests are required")
		}
		tb.Skip("Redis tests skipped: set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run them")
	}
	return url
}
