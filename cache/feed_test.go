package cache

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// cached reports whether the cache holds user uid.
func cached(c *Cache[string], uid uint64) bool {
	_, ok := c.Get(uid)
	return ok
}

func fillUsers(t *testing.T, c *Cache[string], uids ...uint64) {
	t.Helper()
	for _, uid := range uids {
		if !c.Put(uid, 1, "state", c.Ticket()) {
			t.Fatalf("fill of user %d refused", uid)
		}
	}
}

func poll(t *testing.T, f *Feed) {
	t.Helper()
	if err := f.Poll(context.Background()); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

// begin opens a transaction that wrote the outbox row of user uid and is
// not committed yet.
func begin(t *testing.T, db *gorm.DB, uid uint64) *gorm.DB {
	t.Helper()
	tx := db.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	if err := models.InvalidateID(tx, uid, 2); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestFeedAppliesOutbox: every committed outbox row reaches the cache at
// the next read, and a read confirms the cache.
func TestFeedAppliesOutbox(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
			f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour})
			poll(t, f)
			if !c.Trusted() {
				t.Fatal("a successful read did not confirm the cache")
			}
			fillUsers(t, c, 1, 2, 3)
			for _, uid := range []uint64{1, 3} {
				if err := models.InvalidateID(db, uid, 2); err != nil {
					t.Fatal(err)
				}
			}
			poll(t, f)
			if cached(c, 1) || !cached(c, 2) || cached(c, 3) {
				t.Fatalf("after the read: cached 1 %v 2 %v 3 %v; want only 2", cached(c, 1), cached(c, 2), cached(c, 3))
			}
			if h := f.Health(); h.Applied != 2 || h.Reads != 2 {
				t.Fatalf("health %+v: want 2 rows applied in 2 reads", h)
			}
		})
	}
}

// TestFeedOutOfOrderCommits: auto-increment ids are handed out at insert,
// not at commit. A row whose transaction commits after a row with a
// higher id must still be applied (a reader that only asked for ids above
// the highest seen would miss it forever). MySQL and PostgreSQL (whose
// sequences hand out ids the same way): SQLite runs one transaction at a
// time.
func TestFeedOutOfOrderCommits(t *testing.T) { onServers(t, testFeedOutOfOrderCommits) }

func testFeedOutOfOrderCommits(t *testing.T, driver string) {
	db := dbtest.Open(t, driver)
	c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
	f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: time.Hour})
	poll(t, f)
	fillUsers(t, c, 1, 2)

	slow := begin(t, db, 1) // gets the lower id, commits last
	fast := begin(t, db, 2)
	if err := fast.Commit().Error; err != nil {
		t.Fatal(err)
	}
	poll(t, f)
	if !cached(c, 1) || cached(c, 2) {
		t.Fatalf("after the first commit: cached 1 %v 2 %v; want 1 only", cached(c, 1), cached(c, 2))
	}
	if err := slow.Commit().Error; err != nil {
		t.Fatal(err)
	}
	poll(t, f)
	if cached(c, 1) {
		t.Fatal("the row committed after a higher id was never applied: user 1 is still cached")
	}
	if h := f.Health(); h.GapsFilled != 1 {
		t.Fatalf("gaps filled %d, want 1", h.GapsFilled)
	}
}

// TestFeedStartsWithTransactionsInFlight: a feed that starts while a
// transaction holds a lower id than a committed one must not take that id
// as seen.
func TestFeedStartsWithTransactionsInFlight(t *testing.T) {
	onServers(t, testFeedStartsWithTransactionsInFlight)
}

func testFeedStartsWithTransactionsInFlight(t *testing.T, driver string) {
	db := dbtest.Open(t, driver)
	slow := begin(t, db, 1)
	fast := begin(t, db, 2)
	if err := fast.Commit().Error; err != nil {
		t.Fatal(err)
	}
	c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
	f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour})
	poll(t, f)
	fillUsers(t, c, 1)
	if err := slow.Commit().Error; err != nil {
		t.Fatal(err)
	}
	poll(t, f)
	if cached(c, 1) {
		t.Fatal("a row in flight when the feed started was never applied")
	}
}

// TestFeedAbandonsRolledBackIDs: an id whose transaction rolled back never
// appears; it is given up once a read that began GapTimeout after it was
// noticed still does not find it.
func TestFeedAbandonsRolledBackIDs(t *testing.T) { onServers(t, testFeedAbandonsRolledBackIDs) }

func testFeedAbandonsRolledBackIDs(t *testing.T, driver string) {
	db := dbtest.Open(t, driver)
	c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
	f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: 50 * time.Millisecond})
	poll(t, f)
	rolled := begin(t, db, 1)
	if err := models.InvalidateID(db, 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := rolled.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	poll(t, f)
	if h := f.Health(); h.GapsAbandoned != 0 {
		t.Fatalf("a gap was abandoned at once: %+v", h)
	}
	time.Sleep(60 * time.Millisecond)
	poll(t, f)
	if h := f.Health(); h.GapsAbandoned != 1 {
		t.Fatalf("gaps abandoned %d, want 1", h.GapsAbandoned)
	}
}

// TestFeedRegainsTrust: when reads fail for longer than MaxStaleness the
// cache stops being trusted; the next good read flushes it (it may have
// missed anything) and trusts it again, without a restart.
func TestFeedRegainsTrust(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			_, dsn := dbtest.DSN(t, driver)
			db, err := models.Open(driver, dsn, models.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := models.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			c := New[string](Options{MaxEntries: 100, MaxStaleness: 50 * time.Millisecond})
			f := NewFeed(db, c, FeedOptions{MaxStaleness: 50 * time.Millisecond})
			poll(t, f)
			fillUsers(t, c, 1)
			// Break the reads: the table is gone.
			if err := db.Migrator().RenameTable(&models.Invalidation{}, "outbox_away"); err != nil {
				t.Fatal(err)
			}
			if err := f.Poll(context.Background()); err == nil {
				t.Fatal("a read of a missing table succeeded")
			}
			time.Sleep(60 * time.Millisecond)
			if c.Trusted() || cached(c, 1) {
				t.Fatal("the cache is trusted although no read succeeded for MaxStaleness")
			}
			if err := db.Migrator().RenameTable("outbox_away", &models.Invalidation{}); err != nil {
				t.Fatal(err)
			}
			poll(t, f)
			if !c.Trusted() {
				t.Fatal("a good read did not restore trust")
			}
			if cached(c, 1) {
				t.Fatal("the entry from before the outage survived the return of trust")
			}
		})
	}
}

// onServers runs fn on the database servers, MySQL and PostgreSQL, each
// skipped when its DSN is not set: the tests of concurrent transactions
// mean nothing on SQLite, which runs one at a time.
func onServers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, driver := range []string{"mysql", "postgres"} {
		t.Run(driver, func(t *testing.T) { fn(t, driver) })
	}
}
