// Package cache keeps, on each instance, what verifying an access token
// needs for a user (the derived key and the strategy's state), so that
// verifying a token of a cached user reads nothing from the database; and
// it keeps that copy exact.
//
// It earns a package of its own because exactness is the hard part and
// must be read in one place:
//
//   - Every change of a user's revocation state bumps users.revision and
//     writes a row to the outbox table (models.Invalidation) in the same
//     transaction. After the commit the instance that made the change drops
//     the user at once (Cache.Invalidate), so a revoked token is rejected
//     there by the time the revoking request answers, and publishes the
//     invalidation over Redis when one is configured.
//   - Every instance reads the outbox at least every max_staleness (Feed).
//     The outbox is the hard bound, Redis only makes propagation faster: an
//     instance whose last successful outbox read began longer ago than
//     max_staleness stops trusting its cache (Get misses) and reads the
//     database, which fails closed when it is down too.
//   - A fill that read the database before an invalidation arrived is
//     refused (Put with a Ticket taken before the read), so a verification
//     racing a revocation can never put the old state back.
package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// shards spreads the entries over independently locked LRUs, so that
// concurrent verifications of different users do not queue on one lock.
const shards = 16

// Options configure a Cache.
type Options struct {
	// MaxEntries bounds the number of users held (tombstones included);
	// the least recently used are evicted.
	MaxEntries int
	// MaxStaleness is how long after the start of the last successful
	// outbox read the cache is still trusted.
	MaxStaleness time.Duration
}

// Cache is a bounded LRU of per-user values of type V (a user's
// verification state, or what says the user does not exist), kept exact
// by Invalidate, Flush and Confirm. It is safe for concurrent use.
type Cache[V any] struct {
	shards       [shards]shard[V]
	perShard     int
	maxStaleness time.Duration
	// base is the origin of the monotonic times below.
	base time.Time
	// confirmed is when (ns since base) the last successful outbox read
	// began; 0 means never.
	confirmed atomic.Int64
	// distrusted is when (ns since base) Distrust was last called: a read
	// that began before it confirms nothing.
	distrusted atomic.Int64
	// seq orders invalidations and tickets: every invalidation takes the
	// next number, a ticket is the current one.
	seq atomic.Uint64
	// floor refuses every fill whose ticket is older: raised by a flush and
	// when a tombstone is evicted (its user's in-flight fills can no longer
	// be checked against it).
	floor atomic.Uint64
	// maxUser is the highest user id known to exist.
	maxUser atomic.Uint64
	stats   counters
}

type shard[V any] struct {
	mu    sync.Mutex
	items map[uint64]*list.Element
	lru   list.List // of *entry[V], most recently used first
}

// entry is a cached value, or a tombstone: the newest revision an
// invalidation announced, and when (seq), with no value.
type entry[V any] struct {
	uid  uint64
	rev  int64
	val  V
	tomb bool
	seq  uint64
}

// Ticket is taken before the database read of a fill: a fill whose ticket
// is older than an invalidation of its user is refused.
type Ticket uint64

// New returns an empty cache. It trusts nothing until Confirm is called.
func New[V any](o Options) *Cache[V] {
	per := max(1, (o.MaxEntries+shards-1)/shards)
	c := &Cache[V]{perShard: per, maxStaleness: o.MaxStaleness, base: time.Now()}
	for i := range c.shards {
		c.shards[i].items = make(map[uint64]*list.Element)
	}
	return c
}

func (c *Cache[V]) shard(uid uint64) *shard[V] { return &c.shards[uid%shards] }

func (c *Cache[V]) mono() int64 { return int64(time.Since(c.base)) }

// Trusted reports whether the last successful outbox read began less than
// MaxStaleness ago.
func (c *Cache[V]) Trusted() bool {
	t := c.confirmed.Load()
	return t != 0 && c.mono()-t < int64(c.maxStaleness)
}

// Confirm records a successful outbox read that began at start: every
// invalidation committed before start has been applied.
func (c *Cache[V]) Confirm(start time.Time) {
	t := max(int64(start.Sub(c.base)), 1)
	if t < c.distrusted.Load() {
		return
	}
	for {
		old := c.confirmed.Load()
		if t <= old || c.confirmed.CompareAndSwap(old, t) {
			return
		}
	}
}

// Distrust ends the trust until the next Confirm: fills are refused and
// Get misses. The feed calls it when it lost its place in the outbox and
// starts over; a Confirm of a read that began before would not do.
func (c *Cache[V]) Distrust() {
	c.distrusted.Store(c.mono())
	c.confirmed.Store(0)
}

// Get returns the user's value when the cache is trusted and holds one.
func (c *Cache[V]) Get(uid uint64) (V, bool) {
	var zero V
	if !c.Trusted() {
		c.stats.bypasses.Add(1)
		return zero, false
	}
	s := c.shard(uid)
	s.mu.Lock()
	el, ok := s.items[uid]
	if !ok || el.Value.(*entry[V]).tomb {
		s.mu.Unlock()
		c.stats.misses.Add(1)
		return zero, false
	}
	s.lru.MoveToFront(el)
	v := el.Value.(*entry[V]).val
	s.mu.Unlock()
	c.stats.hits.Add(1)
	return v, true
}

// Ticket is to be taken before reading the database for a Put.
func (c *Cache[V]) Ticket() Ticket { return Ticket(c.seq.Load()) }

// Put stores the value of user uid at revision rev, read from the database
// after t was taken. It is refused, and reports false, when an invalidation
// of the user arrived after t (the read may predate the change it
// announced), when the cache holds a newer revision, or when the cache is
// not trusted (it would be flushed before being trusted again).
//
// Revision 0 is a user that does not exist (real users start at 1): the
// negative entry of a deleted user. Over a tombstone it is ordered by the
// ticket alone, because the deletion's tombstone carries the user's last
// revision, which "not found" can never reach; compared by revision, a
// deleted user's token would read the database at every verification. It
// is exact all the same: the read began after the invalidation arrived,
// and anything that makes the id exist again is a newer invalidation,
// which drops it.
func (c *Cache[V]) Put(uid uint64, rev int64, v V, t Ticket) bool {
	if uint64(t) < c.floor.Load() || !c.Trusted() {
		c.stats.refused.Add(1)
		return false
	}
	s := c.shard(uid)
	s.mu.Lock()
	if el, ok := s.items[uid]; ok {
		e := el.Value.(*entry[V])
		if (e.tomb && (e.seq > uint64(t) || (rev != 0 && rev < e.rev))) || (!e.tomb && e.rev > rev) {
			s.mu.Unlock()
			c.stats.refused.Add(1)
			return false
		}
		e.rev, e.val, e.tomb, e.seq = rev, v, false, 0
		s.lru.MoveToFront(el)
		s.mu.Unlock()
		c.stats.fills.Add(1)
		return true
	}
	// Checked again under the lock: an eviction of a tombstone may have
	// raised the floor since.
	if uint64(t) < c.floor.Load() {
		s.mu.Unlock()
		c.stats.refused.Add(1)
		return false
	}
	s.items[uid] = s.lru.PushFront(&entry[V]{uid: uid, rev: rev, val: v})
	c.evict(s)
	s.mu.Unlock()
	c.stats.fills.Add(1)
	return true
}

// Invalidate drops what the cache holds for user uid unless it is already
// at revision rev or newer, and leaves a tombstone so that fills that read
// the database before now are refused.
func (c *Cache[V]) Invalidate(uid uint64, rev int64) {
	c.SeeUser(uid)
	c.stats.invalidations.Add(1)
	s := c.shard(uid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[uid]; ok {
		e := el.Value.(*entry[V])
		if !e.tomb && e.rev >= rev {
			return
		}
		var zero V
		e.rev, e.val, e.tomb, e.seq = max(e.rev, rev), zero, true, c.seq.Add(1)
		s.lru.MoveToFront(el)
		return
	}
	s.items[uid] = s.lru.PushFront(&entry[V]{uid: uid, rev: rev, tomb: true, seq: c.seq.Add(1)})
	c.evict(s)
}

// Flush drops everything and refuses every fill in flight.
func (c *Cache[V]) Flush() {
	c.stats.flushes.Add(1)
	c.raiseFloor(c.seq.Add(1))
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.items)
		s.lru.Init()
		s.mu.Unlock()
	}
}

// evict removes least recently used entries beyond the shard's share.
// s.mu is held.
func (c *Cache[V]) evict(s *shard[V]) {
	for s.lru.Len() > c.perShard {
		el := s.lru.Back()
		e := el.Value.(*entry[V])
		s.lru.Remove(el)
		delete(s.items, e.uid)
		c.stats.evictions.Add(1)
		if e.tomb {
			// Without the tombstone a fill that read before it could
			// not be told apart: refuse every fill in flight.
			c.raiseFloor(c.seq.Add(1))
		}
	}
}

func (c *Cache[V]) raiseFloor(to uint64) {
	for {
		old := c.floor.Load()
		if to <= old || c.floor.CompareAndSwap(old, to) {
			return
		}
	}
}

// SeeUser records that user uid exists (or existed).
func (c *Cache[V]) SeeUser(uid uint64) {
	for {
		old := c.maxUser.Load()
		if uid <= old || c.maxUser.CompareAndSwap(old, uid) {
			return
		}
	}
}

// MaxUser is the highest user id known to exist. A token naming a higher
// one names nobody, unless the user was created a moment ago on another
// instance.
func (c *Cache[V]) MaxUser() uint64 { return c.maxUser.Load() }

// Len is the number of entries, tombstones included.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

type counters struct {
	hits, misses, bypasses, fills, refused, invalidations, evictions, flushes atomic.Uint64
}

// Stats are the cache's counters since it was built.
type Stats struct {
	// Hits are verifications answered from the cache; Misses found no
	// entry; Bypasses did not look because the cache was not trusted.
	Hits, Misses, Bypasses uint64
	// Fills were stored; Refused were not (stale or untrusted).
	Fills, Refused                    uint64
	Invalidations, Evictions, Flushes uint64
	Entries                           int
	Trusted                           bool
}

// Stats returns the counters.
func (c *Cache[V]) Stats() Stats {
	return Stats{
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), Bypasses: c.stats.bypasses.Load(),
		Fills: c.stats.fills.Load(), Refused: c.stats.refused.Load(),
		Invalidations: c.stats.invalidations.Load(), Evictions: c.stats.evictions.Load(), Flushes: c.stats.flushes.Load(),
		Entries: c.Len(), Trusted: c.Trusted(),
	}
}
