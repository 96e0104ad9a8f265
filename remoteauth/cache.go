package remoteauth

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// cache is the optional positive cache: valid answers only, keyed by the
// SHA-256 of the token (a memory dump shows no usable token), bounded in
// entries with least-recently-used eviction, each entry living for the TTL
// or until the token expires, whichever comes first.
type cache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	order   *list.List // of *cacheEntry, most recently used first
	entries map[[sha256.Size]byte]*list.Element
}

type cacheEntry struct {
	key    [sha256.Size]byte
	caller *Caller
	until  time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, order: list.New(), entries: map[[sha256.Size]byte]*list.Element{}}
}

// get returns a copy of the cached caller of key, if it is still fresh at
// now.
func (c *cache) get(key [sha256.Size]byte, now time.Time) (*Caller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.caller.clone(), true
}

// put caches caller under key from now for the TTL, capped by the token's
// expiry.
func (c *cache) put(key [sha256.Size]byte, caller *Caller, now time.Time) {
	until := now.Add(c.ttl)
	if exp := caller.Claims.ExpiresAt; exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value = &cacheEntry{key: key, caller: caller, until: until}
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, caller: caller, until: until})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}
