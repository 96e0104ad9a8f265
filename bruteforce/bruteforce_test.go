package bruteforce_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/bruteforce"
	"github.com/revocable/authserver/internal/clock"
	"github.com/revocable/authserver/internal/redistest"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// newClock is a clock that stands still until Advance.
func newClock() *clock.Manual { return clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

var secret = []byte("test key secret")

// backend is one kind of store under test. newStore returns a store with
// its own connection each call: a second instance, or the same instance
// after a restart.
type backend struct {
	name     string
	newStore func() bruteforce.Store
	// failures reads the stored count of key, -1 if none.
	failures func(key bruteforce.Key) int64
	// raw lists everything stored, to check no email is in it.
	raw func() string
	// down makes the store stop answering.
	down func()
}

func dbBackend(t *testing.T, driver string) backend {
	t.Helper()
	driver, dsn := dbtest.DSN(t, driver)
	open := func() *gorm.DB {
		db, err := models.Open(driver, dsn, models.Options{})
		if err != nil {
			t.Fatalf("open %s: %v", driver, err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
		})
		return db
	}
	db := open()
	if err := db.AutoMigrate(&models.LoginThrottle{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var stores []*gorm.DB
	var mu sync.Mutex
	return backend{
		name: driver,
		newStore: func() bruteforce.Store {
			d := open()
			mu.Lock()
			stores = append(stores, d)
			mu.Unlock()
			return bruteforce.NewDBStore(d)
		},
		failures: func(key bruteforce.Key) int64 {
			var row models.LoginThrottle
			err := db.Take(&row, "key_hash = ?", key[:]).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return -1
			}
			if err != nil {
				t.Fatalf("read row: %v", err)
			}
			return row.Failures
		},
		raw: func() string {
			var rows []models.LoginThrottle
			if err := db.Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, r := range rows {
				fmt.Fprintf(&b, "%x %q %d %d %d\n", r.KeyHash, r.KeyHash, r.Failures, r.LastFailureMicros, r.LockedUntilMicros)
			}
			return b.String()
		},
		down: func() {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range stores {
				if sqlDB, err := d.DB(); err == nil {
					_ = sqlDB.Close()
				}
			}
		},
	}
}

func redisBackend(t *testing.T) backend {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client()
	return backend{
		name:     "redis",
		newStore: func() bruteforce.Store { return bruteforce.NewRedisStore(srv.Client(), "") },
		failures: func(key bruteforce.Key) int64 {
			var match string
			keys := rdb.Keys(context.Background(), "*").Val()
			for _, k := range keys {
				if strings.HasSuffix(k, fmt.Sprintf("%x", key[:])) {
					match = k
				}
			}
			if match == "" {
				return -1
			}
			n, err := rdb.HGet(context.Background(), match, "failures").Int64()
			if err != nil {
				t.Fatalf("read failures: %v", err)
			}
			return n
		},
		raw: func() string {
			var b strings.Builder
			for _, k := range rdb.Keys(context.Background(), "*").Val() {
				fmt.Fprintf(&b, "%s %v\n", k, rdb.HGetAll(context.Background(), k).Val())
			}
			return b.String()
		},
		down: srv.Kill,
	}
}

// backends runs fn on SQLite, MySQL when configured, and Redis.
func backends(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) { fn(t, dbBackend(t, driver)) })
	}
	t.Run("redis", func(t *testing.T) { fn(t, redisBackend(t)) })
}

func newThrottle(t *testing.T, s bruteforce.Store, clk *clock.Manual, p bruteforce.Policy) *bruteforce.Throttle {
	t.Helper()
	th, err := bruteforce.New(s, bruteforce.Options{Policy: p, KeySecret: secret, Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return th
}

var policy = bruteforce.Policy{MaxFailures: 3, BaseDelay: time.Minute, MaxDelay: 4 * time.Minute, ResetAfter: time.Hour}

func check(t *testing.T, th *bruteforce.Throttle, email string) time.Duration {
	t.Helper()
	d, err := th.Check(context.Background(), email)
	if err != nil {
		t.Fatalf("Check(%s): %v", email, err)
	}
	return d
}

func fail(t *testing.T, th *bruteforce.Throttle, email string) time.Duration {
	t.Helper()
	d, err := th.Fail(context.Background(), email)
	if err != nil {
		t.Fatalf("Fail(%s): %v", email, err)
	}
	return d
}

func TestPolicyDelay(t *testing.T) {
	p := bruteforce.Policy{MaxFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute}
	cases := []struct {
		failures int64
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {4, 0},
		{5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second}, {14, 512 * time.Second},
		{15, 15 * time.Minute}, {16, 15 * time.Minute}, {1 << 40, 15 * time.Minute},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.failures), func(t *testing.T) {
			if got := p.Delay(c.failures); got != c.want {
				t.Fatalf("Delay(%d) = %s, want %s", c.failures, got, c.want)
			}
		})
	}
	if d := (bruteforce.Policy{}).Delay(100); d != 0 {
		t.Fatalf("an off policy delays %s", d)
	}
}

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		name string
		p    bruteforce.Policy
		ok   bool
	}{
		{"off", bruteforce.Policy{}, true},
		{"off with delays", bruteforce.Policy{BaseDelay: -1}, true},
		{"default-like", bruteforce.Policy{MaxFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute}, true},
		{"negative max_failures", bruteforce.Policy{MaxFailures: -1}, false},
		{"no base delay", bruteforce.Policy{MaxFailures: 5, MaxDelay: time.Minute}, false},
		{"max below base", bruteforce.Policy{MaxFailures: 5, BaseDelay: time.Minute, MaxDelay: time.Second}, false},
		{"reset time not past max delay", bruteforce.Policy{MaxFailures: 5, BaseDelay: time.Second, MaxDelay: time.Hour, ResetAfter: time.Hour}, false},
		{"max delay past the default reset time", bruteforce.Policy{MaxFailures: 5, BaseDelay: time.Second, MaxDelay: 13 * time.Hour}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
			if _, err := bruteforce.New(nil, bruteforce.Options{Policy: c.p}); (err == nil) != c.ok {
				t.Fatalf("New() = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestThrottle: the lock comes after MaxFailures consecutive failures,
// doubles with each failure after it up to MaxDelay, and a success or an
// unlock starts over; emails are independent.
func TestThrottle(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		th := newThrottle(t, b.newStore(), clk, policy)
		const ann, bob = "ann@example.com", "bob@example.com"

		if d := check(t, th, ann); d != 0 {
			t.Fatalf("fresh email locked for %s", d)
		}
		for i := 1; i <= 2; i++ {
			if d := fail(t, th, ann); d != 0 {
				t.Fatalf("failure %d locked for %s, want no lock before 3", i, d)
			}
			if d := check(t, th, ann); d != 0 {
				t.Fatalf("after %d failures locked for %s", i, d)
			}
		}
		if d := fail(t, th, ann); d != time.Minute {
			t.Fatalf("third failure locked for %s, want 1m", d)
		}
		if d := check(t, th, ann); d != time.Minute {
			t.Fatalf("Check after the lock = %s, want 1m", d)
		}
		if d := check(t, th, bob); d != 0 {
			t.Fatalf("another email locked for %s", d)
		}
		clk.Advance(30*time.Second + 200*time.Millisecond)
		if d := check(t, th, ann); d != 30*time.Second {
			t.Fatalf("29.8s before the end Check = %s, want 30s (rounded up)", d)
		}
		clk.Advance(29*time.Second + 800*time.Millisecond)
		if d := check(t, th, ann); d != 0 {
			t.Fatalf("at the end of the lock Check = %s, want 0", d)
		}
		// Each further failure doubles, up to MaxDelay.
		for i, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
			if d := fail(t, th, ann); d != want {
				t.Fatalf("failure %d locked for %s, want %s", 4+i, d, want)
			}
			if d := check(t, th, ann); d != want {
				t.Fatalf("after failure %d Check = %s, want %s", 4+i, d, want)
			}
			clk.Advance(want)
		}
		if n := b.failures(th.Key(ann)); n != 6 {
			t.Fatalf("stored %d failures, want 6", n)
		}
		if err := th.Succeed(context.Background(), ann); err != nil {
			t.Fatal(err)
		}
		if n := b.failures(th.Key(ann)); n != -1 {
			t.Fatalf("after a success %d failures are stored, want none", n)
		}
		for i := 1; i <= 2; i++ {
			if d := fail(t, th, ann); d != 0 {
				t.Fatalf("failure %d after a success locked for %s: the count did not start over", i, d)
			}
		}
		if d := fail(t, th, ann); d != time.Minute {
			t.Fatalf("third failure after a success locked for %s, want 1m again", d)
		}
		if err := th.Unlock(context.Background(), ann); err != nil {
			t.Fatal(err)
		}
		if d := check(t, th, ann); d != 0 {
			t.Fatalf("after Unlock Check = %s", d)
		}
		if d := fail(t, th, ann); d != 0 {
			t.Fatalf("first failure after Unlock locked for %s", d)
		}
	})
}

// TestResetAfter: failures further apart than ResetAfter are not
// consecutive.
func TestResetAfter(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		th := newThrottle(t, b.newStore(), clk, policy)
		for i := range 10 {
			if d := fail(t, th, "slow@example.com"); d != 0 {
				t.Fatalf("failure %d, an hour and a second after the last, locked for %s", i+1, d)
			}
			clk.Advance(time.Hour + time.Second)
		}
		fail(t, th, "fast@example.com")
		clk.Advance(time.Hour - time.Second)
		fail(t, th, "fast@example.com")
		if d := fail(t, th, "fast@example.com"); d != time.Minute {
			t.Fatalf("3 failures within the hour locked for %s, want 1m", d)
		}
	})
}

// TestRestartAndShared: a second instance on the same store (or the same
// one after a restart) sees the lock and the count, and its unlock frees
// the first.
func TestRestartAndShared(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		a := newThrottle(t, b.newStore(), clk, policy)
		fail(t, a, "ann@example.com")
		fail(t, a, "ann@example.com")

		other := newThrottle(t, b.newStore(), clk, policy)
		if d := fail(t, other, "ann@example.com"); d != time.Minute {
			t.Fatalf("the other instance's failure (3rd in all) locked for %s, want 1m", d)
		}
		restarted := newThrottle(t, b.newStore(), clk, policy)
		if d := check(t, restarted, "ann@example.com"); d != time.Minute {
			t.Fatalf("a restarted instance sees a lock of %s, want 1m", d)
		}
		if err := restarted.Unlock(context.Background(), "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		if d := check(t, a, "ann@example.com"); d != 0 {
			t.Fatalf("unlocked on one instance, still locked for %s on the other", d)
		}
	})
}

// TestConcurrentFailures: failures of one email from two instances at
// once are all counted, none lost, and the lock is the one the last
// count sets.
func TestConcurrentFailures(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		p := bruteforce.Policy{MaxFailures: 40, BaseDelay: time.Second, MaxDelay: time.Hour, ResetAfter: 2 * time.Hour}
		a, other := newThrottle(t, b.newStore(), clk, p), newThrottle(t, b.newStore(), clk, p)
		const n = 50
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			th := a
			if i%2 == 1 {
				th = other
			}
			wg.Go(func() {
				<-start
				_, errs[i] = th.Fail(context.Background(), "race@example.com")
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if got := b.failures(a.Key("race@example.com")); got != n {
			t.Fatalf("%d concurrent failures stored as %d", n, got)
		}
		// The 50th failure is the 11th past the threshold: 2^10 s.
		if d := check(t, a, "race@example.com"); d != 1024*time.Second {
			t.Fatalf("lock after %d failures: %s, want %s", n, d, 1024*time.Second)
		}
	})
}

// TestOff: with MaxFailures 0 nothing is counted or stored.
func TestOff(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		th := newThrottle(t, b.newStore(), clk, bruteforce.Policy{})
		for range 20 {
			if d := fail(t, th, "ann@example.com"); d != 0 {
				t.Fatalf("off throttle locked for %s", d)
			}
		}
		if d := check(t, th, "ann@example.com"); d != 0 {
			t.Fatalf("off throttle: Check = %s", d)
		}
		if n := b.failures(th.Key("ann@example.com")); n != -1 {
			t.Fatalf("off throttle stored %d failures", n)
		}
	})
}

// TestNoEmailStored: the store holds a keyed hash of the email, not the
// email, nor its plain SHA-256.
func TestNoEmailStored(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		th := newThrottle(t, b.newStore(), clk, policy)
		const addr = "private.person@example.com"
		fail(t, th, addr)
		raw := b.raw()
		plain := sha256.Sum256([]byte(addr))
		for _, leak := range []string{addr, "private", fmt.Sprintf("%x", plain[:])} {
			if strings.Contains(raw, leak) {
				t.Fatalf("store holds %q:\n%s", leak, raw)
			}
		}
		if b.failures(th.Key(addr)) != 1 {
			t.Fatalf("the failure was not stored under the keyed hash:\n%s", raw)
		}
	})
}

// TestStoreDown: when the store does not answer, every call says so with
// ErrUnavailable (the router's 503), and none reports "not locked".
func TestStoreDown(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		clk := newClock()
		th := newThrottle(t, b.newStore(), clk, policy)
		fail(t, th, "ann@example.com")
		b.down()
		if d, err := th.Check(context.Background(), "ann@example.com"); !errors.Is(err, bruteforce.ErrUnavailable) {
			t.Fatalf("Check with the store down = %s, %v; want ErrUnavailable", d, err)
		}
		if _, err := th.Fail(context.Background(), "ann@example.com"); !errors.Is(err, bruteforce.ErrUnavailable) {
			t.Fatalf("Fail with the store down = %v; want ErrUnavailable", err)
		}
		if err := th.Succeed(context.Background(), "ann@example.com"); !errors.Is(err, bruteforce.ErrUnavailable) {
			t.Fatalf("Succeed with the store down = %v; want ErrUnavailable", err)
		}
	})
}

// TestPrune: the prune job deletes rows past the reset time that are not
// locked, and keeps the others.
func TestPrune(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			b := dbBackend(t, driver)
			clk := newClock()
			s := b.newStore().(*bruteforce.DBStore)
			p := bruteforce.Policy{MaxFailures: 2, BaseDelay: time.Minute, MaxDelay: 50 * time.Minute, ResetAfter: time.Hour}
			th := newThrottle(t, s, clk, p)
			fail(t, th, "old@example.com")
			clk.Advance(30 * time.Minute)
			for range 7 {
				fail(t, th, "locked@example.com") // locked 32 min
			}
			clk.Advance(29 * time.Minute)
			fail(t, th, "recent@example.com")
			fail(t, th, "recent@example.com") // locked 1m
			clk.Advance(2 * time.Minute)
			n, err := s.Prune(context.Background(), clk.Now(), p)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || b.failures(th.Key("old@example.com")) != -1 {
				t.Fatalf("prune deleted %d rows, want the 1 old one", n)
			}
			if b.failures(th.Key("recent@example.com")) != 2 || b.failures(th.Key("locked@example.com")) != 7 {
				t.Fatal("prune deleted a row within the reset time")
			}
			clk.Advance(time.Hour)
			if n, err := s.Prune(context.Background(), clk.Now(), p); err != nil || n != 2 {
				t.Fatalf("second prune: %d, %v; want the 2 remaining rows", n, err)
			}
		})
	}
}
