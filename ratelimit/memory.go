package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// bucketKey is a hashed client key: fixed size, so that the memory of a
// bucket does not depend on what the client sent.
type bucketKey [16]byte

// buckets are the in-process token buckets of one rule: one x/time/rate
// limiter per key, in a map for lookup and a list ordered by last use.
//
// Memory is bounded twice. A bucket unused for Per has refilled to N and is
// exactly a new bucket, so dropping it loses nothing: every call drops
// those from the cold end of the list. And there are at most max buckets:
// a new key beyond that evicts the least recently used one even if it is
// not full yet. An attacker who can present max distinct keys within Per
// (max distinct IPs for a per-IP rule) can reset a bucket that way; with
// that many addresses a per-IP limit does not bind them anyway, and the
// per-account throttle (package bruteforce) does not live here.
type buckets struct {
	rule  Rule
	limit rate.Limit
	max   int

	mu      sync.Mutex
	items   map[bucketKey]*list.Element
	lru     *list.List // of *bucket, front = most recently used
	evicted uint64
}

type bucket struct {
	key  bucketKey
	lim  *rate.Limiter
	last time.Time
}

func newBuckets(r Rule, max int) *buckets {
	return &buckets{
		rule: r,
		// N/Per as a float, not rate.Every(Per/N): the integer division
		// could round to 0, and Every(0) is rate.Inf, no limit at all.
		limit: rate.Limit(float64(r.N) / r.Per.Seconds()),
		max:   max,
		items: map[bucketKey]*list.Element{},
		lru:   list.New(),
	}
}

// allow takes one token from key's bucket at now, or says how long until
// one is there.
func (b *buckets) allow(now time.Time, key bucketKey) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for e := b.lru.Back(); e != nil; e = b.lru.Back() {
		bk := e.Value.(*bucket)
		if now.Sub(bk.last) < b.rule.Per {
			break
		}
		b.lru.Remove(e)
		delete(b.items, bk.key)
	}
	var bk *bucket
	if e, ok := b.items[key]; ok {
		bk = e.Value.(*bucket)
		b.lru.MoveToFront(e)
	} else {
		if b.lru.Len() >= b.max {
			old := b.lru.Remove(b.lru.Back()).(*bucket)
			delete(b.items, old.key)
			b.evicted++
		}
		bk = &bucket{key: key, lim: rate.NewLimiter(b.limit, b.rule.N)}
		b.items[key] = b.lru.PushFront(bk)
	}
	if now.After(bk.last) {
		bk.last = now
	}
	if bk.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - bk.lim.TokensAt(now)
	wait := time.Duration(math.Ceil(missing / float64(b.limit) * float64(time.Second)))
	return false, wait
}

func (b *buckets) size() (keys int, evicted uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len(), b.evicted
}
