// Package redis implements fluxgate's event bus and presence store on Redis
// so that every replica sees every event and everyone present.
//
// The bus holds one Redis connection for pub/sub per process and one
// SUBSCRIBE per topic, taken when the first local subscriber arrives and
// dropped after the last one leaves; messages are fanned out locally
// without blocking. Channels and keys carry a configurable prefix.
package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix prefixes channel and key names unless Options say otherwise.
const DefaultPrefix = "fluxgate:"

// Open connects to the Redis server at url (redis://host:port/db) and
// checks that it answers. name, if not empty, is the connections' CLIENT
// SETNAME.
func Open(ctx context.Context, url, name string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if name != "" {
		opt.ClientName = name
	}
	client := goredis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	return client, nil
}
