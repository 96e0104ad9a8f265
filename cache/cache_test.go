package cache

import (
	"testing"
	"time"
)

// trusted returns a cache whose trust was confirmed just now and lasts an
// hour, so that tests decide on exactness, not on time.
func trusted(max int) *Cache[string] {
	c := New[string](Options{MaxEntries: max, MaxStaleness: time.Hour})
	c.Confirm(time.Now())
	return c
}

func wantGet(t *testing.T, c *Cache[string], uid uint64, want string, ok bool) {
	t.Helper()
	got, found := c.Get(uid)
	if found != ok || got != want {
		t.Fatalf("Get(%d) = %q, %v; want %q, %v", uid, got, found, want, ok)
	}
}

// TestStaleFill is the race the cache exists to win: a verification read
// the user's state before a revocation committed, and tries to store it
// after the revocation's invalidation arrived. It must be refused, and a
// fill that began after the invalidation accepted.
func TestStaleFill(t *testing.T) {
	tests := []struct {
		name string
		// order of events: ticket taken (read begins), invalidation, put
		run    func(c *Cache[string]) bool
		stored bool
	}{
		{"read before the invalidation, stored after: refused", func(c *Cache[string]) bool {
			tk := c.Ticket()
			c.Invalidate(1, 2)
			return c.Put(1, 1, "old", tk)
		}, false},
		{"read after the invalidation: stored", func(c *Cache[string]) bool {
			c.Invalidate(1, 2)
			tk := c.Ticket()
			return c.Put(1, 2, "new", tk)
		}, true},
		{"read after the invalidation but older revision: refused", func(c *Cache[string]) bool {
			c.Invalidate(1, 3)
			tk := c.Ticket()
			return c.Put(1, 2, "older", tk)
		}, false},
		{"another user's invalidation does not refuse the fill", func(c *Cache[string]) bool {
			tk := c.Ticket()
			c.Invalidate(2, 5)
			return c.Put(1, 1, "mine", tk)
		}, true},
		{"a deleted user's absence, read after the deletion's invalidation: stored", func(c *Cache[string]) bool {
			c.Invalidate(1, 7)
			tk := c.Ticket()
			return c.Put(1, 0, "nobody", tk)
		}, true},
		{"a deleted user's absence, read before the deletion's invalidation: refused", func(c *Cache[string]) bool {
			tk := c.Ticket()
			c.Invalidate(1, 7)
			return c.Put(1, 0, "nobody", tk)
		}, false},
		{"a flush refuses every fill in flight", func(c *Cache[string]) bool {
			tk := c.Ticket()
			c.Flush()
			return c.Put(1, 1, "old", tk)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := trusted(100)
			if got := tt.run(c); got != tt.stored {
				t.Fatalf("Put stored %v, want %v", got, tt.stored)
			}
			_, found := c.Get(1)
			if found != tt.stored {
				t.Fatalf("Get after the put found %v, want %v", found, tt.stored)
			}
		})
	}
}

// TestInvalidate: an invalidation drops an older entry, keeps one at its
// revision or newer (read after that change committed), and a later fill
// of the new revision is kept.
func TestInvalidate(t *testing.T) {
	c := trusted(100)
	c.Put(1, 5, "rev5", c.Ticket())
	wantGet(t, c, 1, "rev5", true)
	c.Invalidate(1, 5)
	wantGet(t, c, 1, "rev5", true)
	c.Invalidate(1, 6)
	wantGet(t, c, 1, "", false)
	if c.Put(1, 5, "rev5 again", c.Ticket()) {
		t.Fatal("a fill older than the invalidation's revision was stored")
	}
	if !c.Put(1, 6, "rev6", c.Ticket()) {
		t.Fatal("a fill of the invalidation's revision was refused")
	}
	wantGet(t, c, 1, "rev6", true)
	if c.Put(1, 5, "rev5", c.Ticket()) {
		t.Fatal("an older fill replaced a newer entry")
	}
	wantGet(t, c, 1, "rev6", true)
	if c.MaxUser() != 1 {
		t.Fatalf("MaxUser %d, want 1", c.MaxUser())
	}
}

// TestNegativeEntry: a deleted user is remembered as nobody, and any
// later invalidation of the id (a new account on a reused id starts at
// revision 1) drops that.
func TestNegativeEntry(t *testing.T) {
	c := trusted(100)
	c.Invalidate(1, 7)
	if !c.Put(1, 0, "nobody", c.Ticket()) {
		t.Fatal("the absence of a deleted user was refused")
	}
	wantGet(t, c, 1, "nobody", true)
	c.Invalidate(1, 1)
	wantGet(t, c, 1, "", false)
}

// TestTrust: an untrusted cache answers nothing and stores nothing; it is
// trusted for MaxStaleness after the start of a confirmed read.
func TestTrust(t *testing.T) {
	c := New[string](Options{MaxEntries: 10, MaxStaleness: 50 * time.Millisecond})
	if c.Put(1, 1, "x", c.Ticket()) {
		t.Fatal("a never-confirmed cache stored a fill")
	}
	c.Confirm(time.Now())
	if !c.Put(1, 1, "x", c.Ticket()) {
		t.Fatal("a confirmed cache refused a fill")
	}
	wantGet(t, c, 1, "x", true)
	c.Confirm(time.Now().Add(-time.Second))
	wantGet(t, c, 1, "x", true) // an older confirmation does not move trust back
	deadline := time.Now().Add(5 * time.Second)
	for c.Trusted() {
		if time.Now().After(deadline) {
			t.Fatal("the cache stayed trusted past MaxStaleness")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantGet(t, c, 1, "", false)
	if st := c.Stats(); st.Bypasses == 0 || st.Hits != 2 {
		t.Fatalf("stats %+v: want 2 hits and a bypass", st)
	}
}

// TestEviction: the cache holds at most MaxEntries; evicting a tombstone
// refuses the fills it could have refused, so that dropping it never lets
// a stale fill in.
func TestEviction(t *testing.T) {
	c := trusted(shards) // one entry per shard
	// Users 1 and 1+shards share a shard.
	tk := c.Ticket()
	c.Invalidate(1, 2)
	c.Put(1+shards, 1, "other", c.Ticket()) // evicts the tombstone of user 1
	if n := c.Len(); n > shards {
		t.Fatalf("%d entries, want at most %d", n, shards)
	}
	if c.Put(1, 1, "stale", tk) {
		t.Fatal("a fill older than an evicted tombstone was stored")
	}
	if !c.Put(1, 2, "fresh", c.Ticket()) {
		t.Fatal("a fill after the eviction was refused")
	}
	wantGet(t, c, 1, "fresh", true)
	wantGet(t, c, 1+shards, "", false) // evicted in turn
	if st := c.Stats(); st.Evictions != 2 {
		t.Fatalf("evictions %d, want 2", st.Evictions)
	}
}
