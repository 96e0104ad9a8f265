// Package ratelimit limits requests per client key (an IP, an account)
// under named rules such as "login_per_ip" = 30/1m.
//
// Without Redis every instance counts on its own, in memory
// (golang.org/x/time/rate token buckets). With Redis all instances share
// one budget per key (GCRA through github.com/go-redis/redis_rate). When
// Redis fails, the call is decided by the in-memory buckets instead: the
// limiter neither lets everything through nor refuses everything while
// Redis is away, logs the outage once and the recovery once, and goes back
// to Redis as soon as a probe finds it answering.
//
// Keys are hashed (HMAC-SHA256 under Options.KeySecret) before they are
// stored anywhere, in memory and in Redis. In Redis because anyone with
// access to it (MONITOR, KEYS, a replica, a backup) would otherwise read a
// list of client IPs and of the email addresses people tried, which is
// personal data that no part of the limiter needs; keyed, because plain
// SHA-256 of an IPv4 address is reversed by trying all 2^32. In memory
// because a fixed 16-byte key bounds what one bucket costs, whatever the
// client sent.
package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultPrefix        = "authserver:rl:"
	DefaultMaxKeys       = 1 << 16
	DefaultProbeInterval = 2 * time.Second
)

// ErrLimited is matched (errors.Is) by the error of a refused Decision.
var ErrLimited = errors.New("rate limited")

// ErrUnknownRule is returned for a rule name the Limiter was not built
// with: a programming error, which must not pass as "no limit".
var ErrUnknownRule = errors.New("unknown rate limit rule")

// Options are the Limiter's dependencies and tuning; the zero value of
// each field means its default.
type Options struct {
	// Redis shares the budgets between instances; nil counts in memory.
	// Give it short timeouts (DialTimeout, ReadTimeout, WriteTimeout of a
	// few hundred ms, MaxRetries -1 or 1): a call waits for Redis before it
	// can fall back.
	Redis *redis.Client
	// Log receives the fallback and recovery messages; nil is slog.Default.
	Log *slog.Logger
	// Prefix starts every Redis key (redis_rate adds "rate:" before it).
	Prefix string
	// KeySecret keys the hash of client keys. Instances sharing a Redis
	// must use the same one; nil hashes with plain SHA-256.
	KeySecret []byte
	// MaxKeys bounds the in-memory buckets of each rule.
	MaxKeys int
	// ProbeInterval is how often, while Redis is failing, one call tries
	// it again.
	ProbeInterval time.Duration
	// Now is the clock of the in-memory buckets and of the probe schedule;
	// nil is time.Now.
	Now func() time.Time
}

// Limiter decides, per rule and key, whether a request may proceed.
type Limiter struct {
	rules  map[string]*ruleState
	rdb    *redis_rate.Limiter
	log    *slog.Logger
	prefix string
	secret []byte
	probe  time.Duration
	now    func() time.Time

	degraded  atomic.Bool
	nextProbe atomic.Int64 // UnixNano; while degraded, when a call may try Redis again
	mu        sync.Mutex   // orders the degraded/restored transitions and their log lines
	since     time.Time    // start of the current outage, under mu
	outages   atomic.Uint64
	fallbacks atomic.Uint64
}

type ruleState struct {
	rule    Rule
	limit   redis_rate.Limit
	mem     *buckets
	allowed atomic.Uint64
	limited atomic.Uint64
}

// New builds a Limiter with the named rules. Off rules are kept, so that
// asking for them is not an error, and allow everything.
func New(rules map[string]Rule, o Options) (*Limiter, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{
		rules: map[string]*ruleState{}, log: o.Log, prefix: o.Prefix,
		secret: o.KeySecret, probe: o.ProbeInterval, now: o.Now,
	}
	if o.Redis != nil {
		l.rdb = redis_rate.NewLimiter(o.Redis)
	}
	for name, r := range rules {
		if name == "" || strings.ContainsAny(name, ": \t\n") {
			return nil, fmt.Errorf("rate limit rule name %q: must be non-empty, without ':' or spaces", name)
		}
		if r.N < 0 || r.N > maxN || (r.N > 0 && r.Per <= 0) {
			return nil, fmt.Errorf("rate limit rule %s: %w %q", name, ErrBadRule, r)
		}
		rs := &ruleState{rule: r}
		if !r.Off() {
			rs.limit = redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Per}
			rs.mem = newBuckets(r, o.MaxKeys)
		}
		l.rules[name] = rs
	}
	return l, nil
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until one more request would
	// be allowed, rounded up to whole seconds and at least 1s: what the
	// Retry-After header says. 0 when allowed.
	RetryAfter time.Duration
	// Rule is the name of the rule that decided.
	Rule string
}

// RetryAfterSeconds is RetryAfter as the Retry-After header's integer.
func (d Decision) RetryAfterSeconds() int { return int(d.RetryAfter / time.Second) }

// Err is nil when allowed and a *LimitedError otherwise, for handlers that
// turn refusals into errors.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &LimitedError{Rule: d.Rule, After: d.RetryAfter}
}

// LimitedError is a refusal; it matches ErrLimited.
type LimitedError struct {
	Rule  string
	After time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("rate limited by %s, retry after %s", e.Rule, e.After)
}

// Is makes errors.Is(err, ErrLimited) hold.
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// RetryAfter is the wait the client is told, in whole seconds, at least 1s.
func (e *LimitedError) RetryAfter() time.Duration { return e.After }

// Allow counts one request of key under the named rule. The error is
// ErrUnknownRule only: a Redis failure is answered from memory, never
// returned.
func (l *Limiter) Allow(ctx context.Context, rule, key string) (Decision, error) {
	rs, ok := l.rules[rule]
	if !ok {
		return Decision{}, fmt.Errorf("%w %q", ErrUnknownRule, rule)
	}
	if rs.rule.Off() {
		rs.allowed.Add(1)
		return Decision{Allowed: true, Rule: rule}, nil
	}
	k := l.hash(rule, key)
	var (
		allowed bool
		wait    time.Duration
		done    bool
	)
	if l.rdb != nil && l.tryRedis() {
		res, err := l.rdb.Allow(ctx, l.prefix+rule+":"+base64.RawURLEncoding.EncodeToString(k[:]), rs.limit)
		switch {
		case err == nil:
			l.restored()
			allowed, wait, done = res.Allowed > 0, res.RetryAfter, true
		case ctx.Err() != nil:
			// The client went away: that says nothing about Redis.
		default:
			l.failed(err)
		}
	}
	if !done {
		if l.rdb != nil {
			l.fallbacks.Add(1)
		}
		allowed, wait = rs.mem.allow(l.now(), k)
	}
	if allowed {
		rs.allowed.Add(1)
		return Decision{Allowed: true, Rule: rule}, nil
	}
	rs.limited.Add(1)
	return Decision{Rule: rule, RetryAfter: wholeSeconds(wait)}, nil
}

// wholeSeconds rounds up to a whole number of seconds, at least one: a
// Retry-After of 0 would invite an immediate retry that is refused again.
func wholeSeconds(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

func (l *Limiter) hash(rule, key string) bucketKey {
	var sum []byte
	if l.secret != nil {
		m := hmac.New(sha256.New, l.secret)
		m.Write([]byte(rule))
		m.Write([]byte{0})
		m.Write([]byte(key))
		sum = m.Sum(nil)
	} else {
		h := sha256.Sum256([]byte(rule + "\x00" + key))
		sum = h[:]
	}
	var k bucketKey
	copy(k[:], sum)
	return k
}

// tryRedis says whether this call should ask Redis: always while it
// answers; while it fails, one call per ProbeInterval, so that a dead
// Redis costs one request a timeout per interval instead of every request.
func (l *Limiter) tryRedis() bool {
	if !l.degraded.Load() {
		return true
	}
	next := l.nextProbe.Load()
	now := l.now().UnixNano()
	return now >= next && l.nextProbe.CompareAndSwap(next, now+int64(l.probe))
}

func (l *Limiter) failed(err error) {
	l.nextProbe.Store(l.now().Add(l.probe).UnixNano())
	if l.degraded.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.degraded.Load() {
		return
	}
	l.since = l.now()
	l.outages.Add(1)
	l.degraded.Store(true)
	l.log.Warn("rate limiting: Redis is not answering; each instance now counts in memory until it is back", "err", err)
}

func (l *Limiter) restored() {
	if !l.degraded.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.degraded.Load() {
		return
	}
	l.degraded.Store(false)
	l.log.Info("rate limiting: Redis answers again; budgets are shared again", "outage", l.now().Sub(l.since).Round(time.Millisecond))
}

// Stats are counters for metrics, since the Limiter was built.
type Stats struct {
	// Rules by name.
	Rules map[string]RuleStats
	// Fallbacks counts calls decided in memory because Redis failed (or
	// was skipped while failing).
	Fallbacks uint64
	// Outages counts the times Redis went from answering to failing.
	Outages uint64
	// Degraded is true while Redis is configured but failing.
	Degraded bool
}

// RuleStats are one rule's counters.
type RuleStats struct {
	Rule    string
	Allowed uint64
	Limited uint64
	// MemoryKeys is how many in-memory buckets the rule holds now, and
	// Evicted how many were dropped before they were full again because
	// MaxKeys was reached.
	MemoryKeys int
	Evicted    uint64
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	s := Stats{
		Rules:     make(map[string]RuleStats, len(l.rules)),
		Fallbacks: l.fallbacks.Load(),
		Outages:   l.outages.Load(),
		Degraded:  l.degraded.Load(),
	}
	for name, rs := range l.rules {
		st := RuleStats{Rule: rs.rule.String(), Allowed: rs.allowed.Load(), Limited: rs.limited.Load()}
		if rs.mem != nil {
			st.MemoryKeys, st.Evicted = rs.mem.size()
		}
		s.Rules[name] = st
	}
	return s
}

// Names lists the rules, sorted.
func (l *Limiter) Names() []string {
	out := make([]string, 0, len(l.rules))
	for n := range l.rules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Rule returns the named rule, and whether the Limiter has it.
func (l *Limiter) Rule(name string) (Rule, bool) {
	rs, ok := l.rules[name]
	if !ok {
		return Rule{}, false
	}
	return rs.rule, true
}
