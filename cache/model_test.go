package cache

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestCacheModel checks the cache and its feed against a reference, the
// database truth, under random interleavings of writes that commit out
// of id order or roll back, fills that race them, outbox reads,
// invalidations applied on the revoking instance, Redis messages
// delivered late, out of order or lost (a lost subscription flushes),
// flushes, evictions (max_entries 1 and 16), a truncated outbox (ids that
// go backwards) and gap bounds small enough to be passed.
//
// The property: a value the cache hands out is never older than the
// newest state committed before the last confirmed outbox read began
// (and the cache is trusted only within max_staleness of that, so never
// older than the newest state committed more than max_staleness ago),
// nor older than any state committed by this instance (the revoking
// instance is exact).
//
// AUTH_MODEL_SEEDS sets the number of seeds per max_entries (default 8,
// enough for CI under -race); AUTH_MODEL_STEPS the steps per seed.
func TestCacheModel(t *testing.T) {
	seeds, steps := 8, 400
	if s := os.Getenv("AUTH_MODEL_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AUTH_MODEL_SEEDS=%q", s)
		}
		seeds = n
	}
	if s := os.Getenv("AUTH_MODEL_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AUTH_MODEL_STEPS=%q", s)
		}
		steps = n
	}
	for _, maxEntries := range []int{1, 16} {
		for seed := range seeds {
			t.Run("max_entries="+strconv.Itoa(maxEntries)+"/seed="+strconv.Itoa(seed), func(t *testing.T) {
				runModel(t, uint64(seed), maxEntries, steps)
			})
		}
	}
}

type modelWrite struct {
	id, uid uint64
	rev     int64
}

type modelFill struct {
	uid    uint64
	rev    int64
	ticket Ticket
}

type modelCommit struct {
	uid   uint64
	rev   int64
	step  int
	local bool
}

func runModel(t *testing.T, seed uint64, maxEntries, steps int) {
	const users = 4
	rng := rand.New(rand.NewPCG(seed, uint64(maxEntries)))
	db := dbtest.Open(t, "sqlite")
	c := New[int64](Options{MaxEntries: maxEntries, MaxStaleness: time.Hour})
	f := NewFeed(db, c, FeedOptions{MaxStaleness: time.Hour, GapTimeout: time.Hour, MaxGapRanges: 2 + rng.IntN(20)})
	ctx := context.Background()

	truth := map[uint64]int64{}
	for u := uint64(1); u <= users; u++ {
		truth[u] = 1
	}
	var (
		nextID    uint64 = 1
		pending          = map[uint64]modelWrite{} // by user: the row lock
		fills     []modelFill
		commits   []modelCommit
		redisQ    []modelWrite
		confirmed = -1 // step at which the last successful read began
		log       []string
	)
	note := func(s string) {
		log = append(log, s)
		if len(log) > 40 {
			log = log[1:]
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		for _, l := range log {
			t.Log(l)
		}
		t.Fatalf(format, args...)
	}
	insert := func(db *gorm.DB, w modelWrite) {
		r := models.Invalidation{ID: w.id, UserID: w.uid, Revision: w.rev, CreatedAt: time.Now().UTC()}
		if err := db.Create(&r).Error; err != nil {
			t.Fatalf("insert outbox row %d: %v", w.id, err)
		}
	}
	for step := range steps {
		uid := uint64(1 + rng.IntN(users))
		switch op := rng.IntN(100); {
		case op < 14: // a write takes the user's lock and an id
			if _, busy := pending[uid]; !busy {
				pending[uid] = modelWrite{id: nextID, uid: uid, rev: truth[uid] + 1}
				nextID++
				note("write begins: user " + strconv.FormatUint(uid, 10) + " id " + strconv.FormatUint(nextID-1, 10))
			}
		case op < 28: // a write commits, in any order of ids
			w, ok := pending[uid]
			if !ok {
				continue
			}
			delete(pending, uid)
			insert(db, w)
			truth[uid] = w.rev
			local := rng.IntN(2) == 0
			commits = append(commits, modelCommit{uid: uid, rev: w.rev, step: step, local: local})
			if local {
				c.Invalidate(uid, w.rev)
			}
			redisQ = append(redisQ, w)
			note("commit: user " + strconv.FormatUint(uid, 10) + " rev " + strconv.FormatInt(w.rev, 10) + " id " + strconv.FormatUint(w.id, 10) + " local " + strconv.FormatBool(local))
		case op < 31: // a write rolls back: its id never appears
			if _, ok := pending[uid]; ok {
				delete(pending, uid)
				note("rollback: user " + strconv.FormatUint(uid, 10))
			}
		case op < 45: // an outbox read
			if err := f.Poll(ctx); err == nil {
				confirmed = step
				note("read confirmed at step " + strconv.Itoa(step))
			} else {
				note("read failed: " + err.Error())
			}
		case op < 57: // a fill reads the database
			fills = append(fills, modelFill{uid: uid, ticket: c.Ticket(), rev: truth[uid]})
			note("fill reads: user " + strconv.FormatUint(uid, 10) + " rev " + strconv.FormatInt(truth[uid], 10))
		case op < 69: // a fill stores what it read, in any order
			if len(fills) == 0 {
				continue
			}
			i := rng.IntN(len(fills))
			fl := fills[i]
			fills = append(fills[:i], fills[i+1:]...)
			ok := c.Put(fl.uid, fl.rev, fl.rev, fl.ticket)
			note("fill stores: user " + strconv.FormatUint(fl.uid, 10) + " rev " + strconv.FormatInt(fl.rev, 10) + " stored " + strconv.FormatBool(ok))
		case op < 76: // a Redis message arrives, in any order
			if len(redisQ) == 0 {
				continue
			}
			i := rng.IntN(len(redisQ))
			m := redisQ[i]
			redisQ = append(redisQ[:i], redisQ[i+1:]...)
			c.Invalidate(m.uid, m.rev)
			note("redis delivers: user " + strconv.FormatUint(m.uid, 10) + " rev " + strconv.FormatInt(m.rev, 10))
		case op < 78: // Redis lost: its messages are gone, the resubscription flushes
			redisQ = nil
			c.Flush()
			note("redis lost: flush")
		case op < 79:
			c.Flush()
			note("flush")
		case op < 80: // the outbox loses its rows (truncation, failover): ids restart
			if len(pending) > 0 {
				continue
			}
			if err := db.Where("id > 0").Delete(&models.Invalidation{}).Error; err != nil {
				t.Fatal(err)
			}
			nextID = 1 + uint64(rng.IntN(3))
			note("outbox truncated; next id " + strconv.FormatUint(nextID, 10))
		default: // a verification
			v, ok := c.Get(uid)
			if !ok {
				continue
			}
			if v > truth[uid] {
				fail("seed %d step %d: user %d cached at rev %d, newer than the truth %d", seed, step, uid, v, truth[uid])
			}
			for _, cm := range commits {
				if cm.uid != uid || cm.rev <= v {
					continue
				}
				if cm.local {
					fail("seed %d step %d: user %d served at rev %d after this instance committed rev %d", seed, step, uid, v, cm.rev)
				}
				if cm.step < confirmed {
					fail("seed %d step %d: user %d served at rev %d; rev %d committed at step %d, before the read confirmed at step %d", seed, step, uid, v, cm.rev, cm.step, confirmed)
				}
			}
		}
	}
}
