package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/clock"
	"github.com/revocable/authserver/internal/redistest"
	"github.com/revocable/authserver/ratelimit"
)

// newClock is a clock that stands still until Advance.
func newClock() *clock.Manual { return clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// logBuf is a slog destination tests can read.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func newLimiter(t *testing.T, rules map[string]string, o ratelimit.Options) *ratelimit.Limiter {
	t.Helper()
	rs := map[string]ratelimit.Rule{}
	for name, s := range rules {
		r, err := ratelimit.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rs[name] = r
	}
	l, err := ratelimit.New(rs, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func allow(t *testing.T, l *ratelimit.Limiter, rule, key string) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), rule, key)
	if err != nil {
		t.Fatalf("Allow(%s, %s): %v", rule, key, err)
	}
	if d.Allowed && d.RetryAfter != 0 {
		t.Fatalf("Allow(%s, %s): allowed with RetryAfter %s", rule, key, d.RetryAfter)
	}
	if !d.Allowed && (d.RetryAfter < time.Second || d.RetryAfter%time.Second != 0) {
		t.Fatalf("Allow(%s, %s): refused with RetryAfter %s, want whole seconds >= 1s", rule, key, d.RetryAfter)
	}
	return d
}

// take makes n calls and returns how many were allowed.
func take(t *testing.T, l *ratelimit.Limiter, rule, key string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		if allow(t, l, rule, key).Allowed {
			ok++
		}
	}
	return ok
}

func TestMemoryLimits(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, map[string]string{"login": "3/1m", "reset": "2/3s", "verify": "0"},
		ratelimit.Options{Now: clk.Now, KeySecret: []byte("k")})

	t.Run("burst of N, then refused with the wait for one token", func(t *testing.T) {
		if got := take(t, l, "login", "192.0.2.1", 3); got != 3 {
			t.Fatalf("%d of the first 3 allowed, want 3", got)
		}
		d := allow(t, l, "login", "192.0.2.1")
		if d.Allowed {
			t.Fatal("4th request within the minute allowed")
		}
		if d.RetryAfter != 20*time.Second || d.RetryAfterSeconds() != 20 || d.Rule != "login" {
			t.Fatalf("refusal %+v, want RetryAfter 20s (one token per 20s) from rule login", d)
		}
		var le *ratelimit.LimitedError
		if err := d.Err(); !errors.Is(err, ratelimit.ErrLimited) || !errors.As(err, &le) || le.RetryAfter() != 20*time.Second {
			t.Fatalf("Err() = %v, want a LimitedError of 20s matching ErrLimited", err)
		}
		clk.Advance(19 * time.Second)
		if d := allow(t, l, "login", "192.0.2.1"); d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("after 19s: %+v, want refused with RetryAfter 1s", d)
		}
		clk.Advance(time.Second)
		if !allow(t, l, "login", "192.0.2.1").Allowed {
			t.Fatal("after 20s the next token was not there")
		}
		if allow(t, l, "login", "192.0.2.1").Allowed {
			t.Fatal("two requests allowed on one refilled token")
		}
	})
	t.Run("keys and rules are independent", func(t *testing.T) {
		if got := take(t, l, "login", "192.0.2.2", 4); got != 3 {
			t.Fatalf("another key: %d of 4 allowed, want 3", got)
		}
		if got := take(t, l, "reset", "192.0.2.1", 3); got != 2 {
			t.Fatalf("the same key under another rule: %d of 3 allowed, want 2", got)
		}
	})
	t.Run("Retry-After rounds up to whole seconds", func(t *testing.T) {
		// 2/3s refills a token every 1.5s: the client is told 2s.
		d := allow(t, l, "reset", "192.0.2.1")
		if d.Allowed || d.RetryAfter != 2*time.Second {
			t.Fatalf("%+v, want refused with RetryAfter 2s", d)
		}
		clk.Advance(1400 * time.Millisecond)
		if d := allow(t, l, "reset", "192.0.2.1"); d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("100ms before the token: %+v, want refused with RetryAfter 1s (never 0)", d)
		}
	})
	t.Run("an off rule allows everything", func(t *testing.T) {
		if got := take(t, l, "verify", "192.0.2.1", 1000); got != 1000 {
			t.Fatalf("off rule allowed %d of 1000", got)
		}
	})
	t.Run("an unknown rule is an error, not a pass", func(t *testing.T) {
		d, err := l.Allow(context.Background(), "logn", "192.0.2.1")
		if !errors.Is(err, ratelimit.ErrUnknownRule) || d.Allowed {
			t.Fatalf("Allow(unknown rule) = %+v, %v; want ErrUnknownRule", d, err)
		}
	})
	t.Run("stats", func(t *testing.T) {
		st := l.Stats()
		if got := st.Rules["verify"]; got.Allowed != 1000 || got.Limited != 0 {
			t.Fatalf("verify stats %+v", got)
		}
		if got := st.Rules["login"]; got.Allowed != 7 || got.Limited != 4 || got.MemoryKeys != 2 || got.Rule != "3/1m0s" {
			t.Fatalf("login stats %+v, want 7 allowed, 4 limited, 2 keys", got)
		}
		if st.Degraded || st.Fallbacks != 0 || st.Outages != 0 {
			t.Fatalf("memory-only limiter reports Redis trouble: %+v", st)
		}
	})
}

// TestMemoryBounded: a flood of distinct keys cannot grow the buckets
// past MaxKeys, and buckets that have refilled are dropped.
func TestMemoryBounded(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, map[string]string{"login": "2/1m"}, ratelimit.Options{Now: clk.Now, MaxKeys: 10})
	for i := range 1000 {
		if !allow(t, l, "login", fmt.Sprintf("10.0.%d.%d", i/256, i%256)).Allowed {
			t.Fatalf("key %d: first request refused", i)
		}
	}
	st := l.Stats().Rules["login"]
	if st.MemoryKeys != 10 || st.Evicted != 990 {
		t.Fatalf("after 1000 keys: %d buckets, %d evicted; want 10 and 990", st.MemoryKeys, st.Evicted)
	}
	// The most recent keys are the ones kept: their budget still counts.
	if got := take(t, l, "login", "10.0.3.231", 2); got != 1 {
		t.Fatalf("a kept key got %d of 2 requests, want 1", got)
	}
	clk.Advance(time.Minute)
	allow(t, l, "login", "fresh")
	if st := l.Stats().Rules["login"]; st.MemoryKeys != 1 || st.Evicted != 990 {
		t.Fatalf("after a quiet minute: %d buckets, %d evicted; want only the new one kept and no eviction", st.MemoryKeys, st.Evicted)
	}
}

// TestRedisShared: two Limiters on one Redis share one budget per key,
// and nothing of the key is stored in clear.
func TestRedisShared(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	opts := ratelimit.Options{Redis: rdb, KeySecret: []byte("shared secret")}
	a := newLimiter(t, map[string]string{"login": "4/1m"}, opts)
	b := newLimiter(t, map[string]string{"login": "4/1m"}, opts)

	got := 0
	for i := range 8 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if allow(t, l, "login", "198.51.100.7").Allowed {
			got++
		}
	}
	if got != 4 {
		t.Fatalf("two instances allowed %d of 8 requests of one key, want 4 in all", got)
	}
	d := allow(t, b, "login", "198.51.100.7")
	if d.Allowed || d.RetryAfter != 15*time.Second {
		t.Fatalf("refusal %+v, want RetryAfter 15s (one token per 15s)", d)
	}
	if got := take(t, b, "login", "198.51.100.8", 5); got != 4 {
		t.Fatalf("another key: %d of 5 allowed, want 4", got)
	}

	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("Redis keys %q, want one per client key", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "rate:"+ratelimit.DefaultPrefix+"login:") || strings.Contains(k, "198.51") {
			t.Fatalf("Redis key %q: want the prefix and a hash, not the client key", k)
		}
		if ttl := rdb.TTL(context.Background(), k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Fatalf("Redis key %q has TTL %s, want it to expire within the rule's minute", k, ttl)
		}
	}
	for _, l := range []*ratelimit.Limiter{a, b} {
		if st := l.Stats(); st.Fallbacks != 0 || st.Degraded {
			t.Fatalf("healthy Redis, yet %+v", st)
		}
	}

	// An instance with another secret hashes to other keys: the secret is
	// part of what instances must share.
	c := newLimiter(t, map[string]string{"login": "4/1m"}, ratelimit.Options{Redis: rdb, KeySecret: []byte("other")})
	if !allow(t, c, "login", "198.51.100.7").Allowed {
		t.Fatal("an instance with another key secret shares the budget")
	}
}

// TestRedisFallback: with Redis killed mid-test each instance limits from
// memory (some requests pass, the excess is refused), says so once, and
// goes back to the shared budget when Redis answers again.
func TestRedisFallback(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	var logs logBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opts := ratelimit.Options{Redis: srv.Client(), Log: log, Now: clk.Now, ProbeInterval: 10 * time.Second}
	rules := map[string]string{"login": "3/1m"}
	a := newLimiter(t, rules, opts)
	b := newLimiter(t, rules, opts)
	const ip = "203.0.113.5"

	if got := take(t, a, "login", ip, 2); got != 2 {
		t.Fatalf("before the outage %d of 2 allowed", got)
	}
	srv.Kill()

	// Each instance falls back to its own memory: never all-pass, never
	// all-fail. a had used 2 of the shared 3 in Redis; memory starts over.
	if got := take(t, a, "login", ip, 10); got != 3 {
		t.Fatalf("during the outage instance a allowed %d of 10, want 3 (its memory budget)", got)
	}
	if got := take(t, b, "login", ip, 10); got != 3 {
		t.Fatalf("during the outage instance b allowed %d of 10, want 3", got)
	}
	if got := take(t, a, "login", "another", 1); got != 1 {
		t.Fatal("during the outage a new key was refused")
	}
	st := a.Stats()
	if !st.Degraded || st.Outages != 1 || st.Fallbacks != 11 {
		t.Fatalf("stats during the outage %+v, want degraded, 1 outage, 11 fallbacks", st)
	}
	if n := logs.count("level=WARN"); n != 2 {
		t.Fatalf("%d warnings for the outage, want one per instance:\n%s", n, logs.buf.String())
	}

	t.Run("concurrent calls during the outage", func(t *testing.T) {
		var mu sync.Mutex
		allowed, errs := 0, 0
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				d, err := a.Allow(context.Background(), "login", "concurrent")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs++
				}
				if d.Allowed {
					allowed++
				}
			})
		}
		wg.Wait()
		if errs != 0 || allowed != 3 {
			t.Fatalf("20 concurrent calls: %d allowed, %d errors; want 3 and 0", allowed, errs)
		}
	})

	srv.Restart()
	// Until the probe is due nobody asks Redis.
	if allow(t, a, "login", ip).Allowed {
		t.Fatal("memory budget of a exhausted, yet allowed")
	}
	if !a.Stats().Degraded {
		t.Fatal("recovered before the probe interval")
	}
	clk.Advance(10 * time.Second)
	// The probe goes to Redis, which restarted empty: a fresh shared budget.
	if !allow(t, a, "login", ip).Allowed {
		t.Fatal("after recovery the first request was refused")
	}
	if st := a.Stats(); st.Degraded || st.Outages != 1 {
		t.Fatalf("stats after recovery %+v, want not degraded", st)
	}
	if n := logs.count("level=INFO"); n != 1 {
		t.Fatalf("%d recovery messages, want 1:\n%s", n, logs.buf.String())
	}
	// b recovers on its next call too; the budget is one again.
	got := 1
	for i := range 6 {
		l := a
		if i%2 == 0 {
			l = b
		}
		if allow(t, l, "login", ip).Allowed {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("after recovery the instances allowed %d in all, want the shared 3", got)
	}
	if b.Stats().Degraded {
		t.Fatal("b still degraded")
	}
}

// TestRedisCanceledContext: a client that hangs up is not a Redis outage.
func TestRedisCanceledContext(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, map[string]string{"login": "3/1m"}, ratelimit.Options{Redis: srv.Client()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := l.Allow(ctx, "login", "x")
	if err != nil || !d.Allowed {
		t.Fatalf("Allow with a canceled context = %+v, %v; want decided from memory", d, err)
	}
	if st := l.Stats(); st.Degraded || st.Outages != 0 || st.Fallbacks != 1 {
		t.Fatalf("stats %+v: a canceled request marked Redis down", st)
	}
}
