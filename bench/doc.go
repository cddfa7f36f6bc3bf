// Package bench holds fluxgate's realtime benchmarks; it has no code of its
// own. Run them with
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./bench -run '^$' -bench . -benchtime 200x
//
// They print, per benchmark: fan-out latency from publish to the last
// subscriber's receipt (p50/p99) and CPU per delivered event, memory and
// goroutines per idle subscription, and cross-replica latency through
// Redis at 1,000 events/s. Without REDIS_URL the Redis ones are skipped.
package bench
