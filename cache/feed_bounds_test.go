package cache

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// row writes the outbox row id of user uid, as a transaction that was
// handed id and commits now would: explicit ids let one connection play
// any order of commits, on every driver.
func row(t *testing.T, db *gorm.DB, id, uid uint64) {
	t.Helper()
	r := models.Invalidation{ID: id, UserID: uid, Revision: 2, CreatedAt: time.Now().UTC()}
	if err := db.Create(&r).Error; err != nil {
		t.Fatalf("outbox row %d: %v", id, err)
	}
}

// TestFeedNeverSkipsAGap (issue 18, item 1): the first row an instance
// sees is far above hi (pruned rows, an AUTO_INCREMENT jump, Galera's
// interleaved ids); a transaction that was handed an id in between
// commits afterwards. Its invalidation must be applied however far the
// jump was: hi never moves past an id that is not tracked.
func TestFeedNeverSkipsAGap(t *testing.T) {
	tests := []struct {
		name      string
		first     uint64 // the first row seen
		late      uint64 // the row that commits after it
		lateUsers uint64
	}{
		{"small jump", 10, 5, 1},
		{"jump beyond 100,000 ids", 200001, 150000, 1},
		{"late row at the bottom of a huge jump", 5000001, 1, 1},
	}
	for _, driver := range dbtest.Drivers() {
		for _, tc := range tests {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				db := dbtest.Open(t, driver)
				c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
				f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: time.Hour})
				poll(t, f)
				row(t, db, tc.first, 2)
				poll(t, f)
				fillUsers(t, c, tc.lateUsers)
				row(t, db, tc.late, tc.lateUsers)
				poll(t, f)
				if cached(c, tc.lateUsers) {
					t.Fatalf("row %d committed after row %d was never applied: the user's old state is served", tc.late, tc.first)
				}
			})
		}
	}
}

// TestFeedTooManyGapsLosesTrust (issue 18, item 1): past MaxGapRanges the
// feed does not drop gaps; it flushes the cache and starts over from the
// current maximum, and a row that then commits in an old gap cannot be
// served stale because nothing from before the restart is cached.
func TestFeedTooManyGapsLosesTrust(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
			f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: time.Hour, MaxGapRanges: 3})
			poll(t, f)
			fillUsers(t, c, 1)
			for _, id := range []uint64{2, 4, 6, 8, 10} {
				row(t, db, id, 100+id)
			}
			if err := f.Poll(context.Background()); err == nil {
				t.Fatal("a read with more gap ranges than the bound succeeded")
			}
			if h := f.Health(); h.Restarts != 1 {
				t.Fatalf("restarts %d, want 1 (5 gap ranges, bound 3)", h.Restarts)
			}
			if cached(c, 1) || c.Trusted() {
				t.Fatal("the cache was not flushed and distrusted when the gaps outgrew the bound")
			}
			// The start-over looks for the recent gaps too, and stays
			// untrusted while they are more than the bound; once they are
			// older than GapTimeout they cannot commit any more.
			if err := db.Model(&models.Invalidation{}).Where("id > 0").Update("created_at", time.Now().Add(-2*time.Hour).UTC()).Error; err != nil {
				t.Fatal(err)
			}
			poll(t, f)
			if !c.Trusted() {
				t.Fatal("the restart from the current maximum did not confirm the cache")
			}
		})
	}
}

// TestFeedIDsGoBackwards (issue 18, item 2): after a failover to a
// replica that lacked the last rows, a restore or a truncated outbox, new
// invalidations get ids at or below hi. The feed must notice and flush.
func TestFeedIDsGoBackwards(t *testing.T) {
	tests := []struct {
		name string
		// after the outbox lost its rows, the rows written: id -> user
		rows map[uint64]uint64
	}{
		{"max id below hi", map[uint64]uint64{1: 7, 2: 1}},
		{"ids reused past hi", map[uint64]uint64{1: 7, 2: 1, 3: 8, 4: 9, 5: 10, 6: 11, 7: 12}},
		{"hi reused by another row", map[uint64]uint64{5: 1}},
	}
	for _, driver := range dbtest.Drivers() {
		for _, tc := range tests {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				db := dbtest.Open(t, driver)
				c := New[string](Options{MaxEntries: 100, MaxStaleness: time.Hour})
				f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: time.Hour})
				poll(t, f)
				for id := uint64(1); id <= 5; id++ {
					row(t, db, id, 100+id)
				}
				poll(t, f)
				fillUsers(t, c, 1)
				if err := db.Where("id > 0").Delete(&models.Invalidation{}).Error; err != nil {
					t.Fatal(err)
				}
				for id, uid := range tc.rows {
					row(t, db, id, uid)
				}
				poll(t, f)
				if cached(c, 1) {
					t.Fatal("an invalidation under a reused id was never applied: user 1's old state is served")
				}
				if !c.Trusted() {
					t.Fatal("the feed did not start over")
				}
			})
		}
	}
}

// TestFeedCatchUpFarBehind (issue 18, item 3): an instance that is far
// behind (AUTH_CATCHUP_ROWS outbox rows, 1,000,000 by default, written
// with INSERT ... SELECT while it was not reading) is trusted again
// within a bound, and the time it took is reported. MySQL only (SQLite
// writes a million rows too slowly for the suite); skipped with -short.
func TestFeedCatchUpFarBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million rows")
	}
	n := 1_000_000
	if s := os.Getenv("AUTH_CATCHUP_ROWS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("AUTH_CATCHUP_ROWS=%q", s)
		}
	}
	db := dbtest.Open(t, "mysql")
	const staleness = time.Second
	c := New[string](Options{MaxEntries: 1000, MaxStaleness: staleness})
	f := NewFeed(db, c, FeedOptions{MaxStaleness: staleness})
	poll(t, f)
	row(t, db, 1, 1)
	for total := 1; total < n; total *= 2 {
		lim := min(total, n-total)
		if err := db.Exec("INSERT INTO invalidations (user_id, revision, created_at) SELECT user_id + 1, revision, created_at FROM invalidations ORDER BY id LIMIT ?", lim).Error; err != nil {
			t.Fatal(err)
		}
	}
	var count int64
	if err := db.Model(&models.Invalidation{}).Count(&count).Error; err != nil {
		t.Fatal(err)
	}
	// As Run does: a read every PollEvery, until the cache is trusted.
	begin := time.Now()
	deadline := begin.Add(2 * time.Minute)
	for !c.Trusted() || f.Health().LastRead.Before(begin) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows behind: not trusted again after %v (%+v)", count, time.Since(begin), f.Health())
		}
		ps := time.Now()
		err := f.Poll(context.Background())
		t.Logf("read after %v took %v: %v", ps.Sub(begin).Round(time.Millisecond), time.Since(ps).Round(time.Millisecond), err)
		time.Sleep(f.PollEvery())
	}
	took := time.Since(begin)
	t.Logf("%d rows behind: trusted again after %v (%d reads, %d failed, %d restarts)", count, took.Round(time.Millisecond), f.Health().Reads, f.Health().Failures, f.Health().Restarts)
	if cached(c, 1) {
		t.Fatal("entry from before the catch-up survived")
	}
}
