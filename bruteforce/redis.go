package bruteforce

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts the keys of RedisStore.
const DefaultRedisPrefix = "authserver:bf:"

// RedisStore keeps the counts in Redis hashes, one per email, that expire
// on their own once they no longer matter.
type RedisStore struct {
	rdb    *redis.Client
	prefix string
}

// NewRedisStore returns a store on rdb; "" prefix means
// DefaultRedisPrefix.
func NewRedisStore(rdb *redis.Client, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{rdb: rdb, prefix: prefix}
}

func (s *RedisStore) key(k Key) string { return s.prefix + hex.EncodeToString(k[:]) }

func (s *RedisStore) LockedUntil(ctx context.Context, key Key) (time.Time, error) {
	ms, err := s.rdb.HGet(ctx, s.key(key), "until").Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable("read lock", err)
	}
	return fromMillis(ms), nil
}

// failScript counts one failure and sets the lock atomically (a script
// runs alone in Redis). It is the same rule as Policy.Delay, in Lua; the
// tests run one table of expectations against both stores. Times are
// milliseconds: Lua 5.1 turns numbers into strings with 14 significant
// digits, which microseconds since the epoch exceed.
var failScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local reset_after = tonumber(ARGV[2])
local max_failures = tonumber(ARGV[3])
local base = tonumber(ARGV[4])
local max_delay = tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'failures', 'last', 'until')
local failures = tonumber(v[1]) or 0
local last = tonumber(v[2]) or 0
local locked = tonumber(v[3]) or 0
if last < now - reset_after then failures = 0 end
failures = failures + 1
if failures >= max_failures then
  local d = base
  local i = failures - max_failures
  while i > 0 and d < max_delay do
    d = d * 2
    i = i - 1
  end
  if d > max_delay then d = max_delay end
  if now + d > locked then locked = now + d end
end
redis.call('HSET', KEYS[1], 'failures', failures, 'last', now, 'until', locked)
redis.call('PEXPIRE', KEYS[1], reset_after + max_delay)
return locked
`)

func (s *RedisStore) Fail(ctx context.Context, key Key, now time.Time, p Policy) (time.Time, error) {
	ms, err := failScript.Run(ctx, s.rdb, []string{s.key(key)},
		now.UnixMilli(), p.resetAfter().Milliseconds(), p.MaxFailures,
		p.BaseDelay.Milliseconds(), p.MaxDelay.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, unavailable("count failure", err)
	}
	return fromMillis(ms), nil
}

func (s *RedisStore) Reset(ctx context.Context, key Key) error {
	if err := s.rdb.Del(ctx, s.key(key)).Err(); err != nil {
		return unavailable("reset", err)
	}
	return nil
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
