package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Target is what the feed keeps exact: a Cache of any value type.
type Target interface {
	Invalidate(uid uint64, rev int64)
	Flush()
	// Distrust ends the trust at once, until the next Confirm: the feed
	// lost its place in the outbox.
	Distrust()
	Confirm(start time.Time)
	SeeUser(uid uint64)
}

// FeedOptions configure a Feed.
type FeedOptions struct {
	// MaxStaleness is the cache's bound; the outbox is read four times
	// within it, so that one slow or failed read does not end the trust.
	MaxStaleness time.Duration
	// Redis, when set, carries invalidations between instances within
	// milliseconds; the outbox stays the bound.
	Redis *redis.Client
	// Channel is the Redis channel of invalidations.
	Channel string
	Log     *slog.Logger
	// GapTimeout is how long a missing outbox id is looked for; zero
	// means DefaultGapTimeout.
	GapTimeout time.Duration
	// MaxGapRanges bounds the ranges of missing ids tracked; past it the
	// feed flushes the cache and starts over from the current maximum.
	// Zero means DefaultMaxGapRanges.
	MaxGapRanges int
}

// Feed applies every committed invalidation to a Target: from the outbox
// table, read at least every MaxStaleness/4, and, when Redis is
// configured, from a pub/sub channel that other instances publish to
// after their commits.
//
// Reading the outbox in commit order. Auto-increment ids are handed out at
// insert, not at commit, so a row can become visible after a row with a
// higher id. The feed tracks gaps as ranges of ids: every id below the
// highest id seen (hi) that has not been seen yet belongs to one, and hi
// never moves past an id that is not tracked. A gap is looked for again
// on every read until its rows appear or until a read that began more
// than GapTimeout after it was noticed still does not find them. No
// transaction lives longer than models.TxTimeout, so by then the id was
// rolled back and never will commit. When the gaps outnumber
// MaxGapRanges the feed cannot afford to look for them: it stops
// trusting the cache, flushes it and starts over from the current
// maximum (see docs/cache-bounds.md).
//
// Ids that go backwards. The feed remembers the row at hi (the anchor) and
// checks at every read that it is still there, unchanged. A failover to a
// replica that lacked the last rows, a restore or a truncated outbox
// removes or replaces it: the feed then flushes the cache and starts over
// from the current maximum, since new invalidations may carry ids at or
// below hi, which a reader of "id > hi" would never see.
type Feed struct {
	db     *gorm.DB
	target Target
	opt    FeedOptions
	log    *slog.Logger
	// base is the origin of the monotonic times below: a step of the wall
	// clock neither ends nor extends the trust.
	base time.Time

	// mu guards the poller state: one read at a time.
	mu      sync.Mutex
	hi      uint64
	anchor  *models.Invalidation
	gaps    []gap
	started bool
	failing bool

	// lastRead is when (ns since base) the last successful read began;
	// lastReadWall the same instant as wall time (unix ns), for Health.
	lastRead     atomic.Int64
	lastReadWall atomic.Int64
	stats        feedCounters

	redis *redisLink
}

// gap is a range of outbox ids not seen yet, noticed at (ns since base).
type gap struct {
	lo, hi  uint64
	noticed int64
}

// pollPage is how many outbox rows one query of a read fetches; each page
// is applied before the next is read, so a read that runs out of time
// keeps what it applied.
const pollPage = 5000

// gapChunk is how many gap ranges one query looks for.
const gapChunk = 200

// DefaultGapTimeout is how long a missing outbox id is looked for: longer
// than any transaction can live (models.TxTimeout), with a margin for
// clock skew between instances.
const DefaultGapTimeout = 6 * models.TxTimeout

// DefaultMaxGapRanges bounds the gap ranges tracked, and so the queries a
// read spends on them (DefaultMaxGapRanges/gapChunk).
const DefaultMaxGapRanges = 10000

// errRestart says the feed lost track of the outbox (too many gaps, ids
// gone backwards): the cache must be flushed and the feed started over.
var errRestart = errors.New("outbox feed restarts")

// NewFeed builds the feed of target on db's outbox.
func NewFeed(db *gorm.DB, target Target, o FeedOptions) *Feed {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Channel == "" {
		o.Channel = "authserver:invalidations"
	}
	if o.GapTimeout <= 0 {
		o.GapTimeout = DefaultGapTimeout
	}
	if o.MaxGapRanges <= 0 {
		o.MaxGapRanges = DefaultMaxGapRanges
	}
	f := &Feed{db: db, target: target, opt: o, log: o.Log, base: time.Now()}
	if o.Redis != nil {
		f.redis = newRedisLink(o.Redis, o.Channel, target, o.Log)
	}
	return f
}

// PollEvery is how often the outbox is read.
func (f *Feed) PollEvery() time.Duration { return max(f.opt.MaxStaleness/4, time.Millisecond) }

// Run reads the outbox (and subscribes to Redis) until ctx ends. It reads
// once before it returns control to the ticker, so a server that starts
// answers from its cache at once.
func (f *Feed) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if f.redis != nil {
		wg.Go(func() { f.redis.run(ctx) })
	}
	t := time.NewTicker(f.PollEvery())
	defer t.Stop()
	for {
		f.Poll(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Publish announces a committed invalidation to the other instances
// through Redis, without waiting: a hung Redis never holds a revoking
// request. Without Redis it does nothing (the outbox carries it).
func (f *Feed) Publish(uid uint64, rev int64) {
	if f.redis != nil {
		f.redis.publish(uid, rev)
	}
}

// mono is t as ns since base, from t's monotonic reading.
func (f *Feed) mono(t time.Time) int64 { return max(int64(t.Sub(f.base)), 1) }

// Poll reads the outbox once and applies what it finds. It returns the
// error of the read, if any; the cache stops being trusted on its own
// when reads keep failing.
//
// When the last successful read began longer than MaxStaleness ago the
// cache is no longer trusted and will be flushed. When that lapse has
// itself lasted longer than MaxStaleness, catching up on what was missed
// would be wasted work, so the feed starts over from the current maximum
// id instead (an instance far behind is trusted again after one read,
// whatever it missed).
func (f *Feed) Poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := time.Now()
	now := f.mono(start)
	prev := f.lastRead.Load()
	lapsed := prev != 0 && now-prev > int64(f.opt.MaxStaleness)
	// Trust ended max_staleness after the last good read; when it has
	// been over for longer than max_staleness too, the instance is far
	// behind (or was cut off): catching up would be wasted work on a cache
	// that is flushed anyway, so the feed starts over from MAX(id). A
	// shorter lapse (a slow read, a busy database) just catches up.
	if now-prev > 2*int64(f.opt.MaxStaleness) && prev != 0 && f.started {
		f.restart("trust lapsed")
		lapsed = true
		// Only a read that began after the restart confirms.
		start = time.Now()
		now = f.mono(start)
	}
	began := !f.started
	err := f.poll(ctx, start)
	if errors.Is(err, errRestart) {
		began = true
		f.log.Warn("cache: the invalidation outbox feed starts over; cache flushed", "err", err)
		f.restart(err.Error())
		lapsed = true
		start = time.Now()
		now = f.mono(start)
		err = f.poll(ctx, start)
	}
	if err != nil {
		f.stats.failures.Add(1)
		if !f.failing {
			f.log.Warn("cache: reading the invalidation outbox failed; the cache stays trusted until max_staleness has passed since the last good read", "err", err)
		}
		f.failing = true
		return err
	}
	if began {
		// The cache was empty and refused every fill while the feed began
		// (it was flushed, or never trusted): what a fill reads from now
		// on is newer than every row the beginning took as seen, and the
		// rows it did not see are tracked. So trust starts now, not when
		// the beginning started, which may have been long ago with a
		// large recent outbox; the flush refuses fills that read before.
		start = time.Now()
		now = f.mono(start)
		lapsed = true
	}
	if lapsed {
		// The cache stopped being trusted. Start over from a consistent
		// point: nothing cached before survives.
		f.target.Flush()
		if prev != 0 {
			f.log.Info("cache: invalidation outbox readable again; cache flushed")
		}
	}
	f.failing = false
	f.lastRead.Store(now)
	f.lastReadWall.Store(start.UnixNano())
	f.stats.reads.Add(1)
	f.target.Confirm(start)
	return nil
}

// restart forgets the position in the outbox and flushes the target: the
// next read begins from the current maximum id.
func (f *Feed) restart(why string) {
	f.stats.restarts.Add(1)
	f.started = false
	f.hi, f.anchor, f.gaps = 0, nil, nil
	f.target.Distrust()
	f.target.Flush()
	f.log.Info("cache: invalidation outbox feed restarts from the current maximum id", "why", why)
}

func (f *Feed) poll(ctx context.Context, start time.Time) error {
	now := f.mono(start)
	if !f.started {
		// Beginning reads the recent window of the outbox once; it may
		// take longer than a regular read, and nothing is trusted
		// meanwhile.
		bctx, cancel := context.WithTimeout(models.Background(ctx), max(f.opt.MaxStaleness, 10*time.Second))
		err := f.begin(f.db.WithContext(bctx), start, now)
		cancel()
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(models.Background(ctx), max(f.opt.MaxStaleness, time.Second))
	defer cancel()
	db := f.db.WithContext(ctx)
	// Read everything above the highest id seen, a page at a time, each
	// page applied before the next is read: the cache is confirmed only
	// once every row committed before start is applied, but a read that
	// runs out of time keeps its progress. The first page starts at the
	// anchor, the row at hi, which must still be there, unchanged.
	for first := true; ; first = false {
		var page []models.Invalidation
		q := db.Where("id > ?", f.hi)
		if first && f.anchor != nil {
			q = db.Where("id >= ?", f.hi)
		}
		if err := q.Order("id").Limit(pollPage).Find(&page).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		full := len(page) == pollPage
		if first && f.anchor != nil {
			if err := f.checkAnchor(page); err != nil {
				return err
			}
			page = page[1:]
		}
		for _, r := range page {
			f.apply(r, now)
		}
		if len(f.gaps) > f.opt.MaxGapRanges {
			return fmt.Errorf("%w: %d gap ranges, more than %d", errRestart, len(f.gaps), f.opt.MaxGapRanges)
		}
		if !full {
			break
		}
	}
	if err := f.recheckGaps(db, now); err != nil {
		return err
	}
	kept := f.gaps[:0]
	for _, g := range f.gaps {
		if now-g.noticed > int64(f.opt.GapTimeout) {
			f.stats.gapsAbandoned.Add(g.hi - g.lo + 1)
			continue
		}
		kept = append(kept, g)
	}
	clear(f.gaps[len(kept):])
	f.gaps = kept
	return nil
}

// checkAnchor fails with errRestart when the row at hi, which must head
// page (rows from hi up), is gone or is another row: the ids went
// backwards.
func (f *Feed) checkAnchor(page []models.Invalidation) error {
	if len(page) == 0 || page[0].ID != f.anchor.ID {
		return fmt.Errorf("%w: outbox row %d, the highest seen, is gone (failover, restore or truncation)", errRestart, f.anchor.ID)
	}
	r := page[0]
	if r.UserID != f.anchor.UserID || r.Revision != f.anchor.Revision || !r.CreatedAt.Equal(f.anchor.CreatedAt) {
		return fmt.Errorf("%w: outbox row %d, the highest seen, was replaced (ids reused)", errRestart, f.anchor.ID)
	}
	return nil
}

// recheckGaps looks for the rows of the tracked gaps, gapChunk ranges per
// query, each query paged.
func (f *Feed) recheckGaps(db *gorm.DB, now int64) error {
	if len(f.gaps) == 0 {
		return nil
	}
	ranges := make([]gap, len(f.gaps))
	copy(ranges, f.gaps)
	for chunk := range slices.Chunk(ranges, gapChunk) {
		var cond strings.Builder
		args := make([]any, 0, 2*len(chunk))
		for i, g := range chunk {
			if i > 0 {
				cond.WriteString(" OR ")
			}
			cond.WriteString("id BETWEEN ? AND ?")
			args = append(args, g.lo, g.hi)
		}
		for after := uint64(0); ; {
			var late []models.Invalidation
			err := db.Where(cond.String(), args...).Where("id > ?", after).Order("id").Limit(pollPage).Find(&late).Error
			if err != nil {
				return fmt.Errorf("read outbox gaps: %w", err)
			}
			for _, r := range late {
				f.apply(r, now)
			}
			if len(late) < pollPage {
				break
			}
			after = late[len(late)-1].ID
		}
	}
	return nil
}

// begin sets the starting point: hi is the highest id, and every id that
// may still commit is a gap. Those are the missing ids above the highest
// one inserted more than GapTimeout ago (by the writers' clocks, stored in
// created_at: a writer whose clock is behind the reader's by more than
// GapTimeout-TxTimeout could have an in-flight id taken as rolled back).
// The missing ids are found from the ids of the recent window (one count
// when it has none), not from its rows.
func (f *Feed) begin(db *gorm.DB, start time.Time, now int64) error {
	var hi, old struct{ Max *uint64 }
	if err := db.Model(&models.Invalidation{}).Select("MAX(id) AS max").Scan(&hi).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	var uid struct{ Max *uint64 }
	if err := db.Model(&models.User{}).Select("MAX(id) AS max").Scan(&uid).Error; err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if uid.Max != nil {
		f.target.SeeUser(*uid.Max)
	}
	f.hi, f.anchor, f.gaps = 0, nil, nil
	if hi.Max == nil {
		f.started = true
		return nil
	}
	if err := db.Model(&models.Invalidation{}).Where("created_at < ?", start.Add(-f.opt.GapTimeout).UTC()).
		Select("MAX(id) AS max").Scan(&old).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	var anchor models.Invalidation
	if err := db.Where("id = ?", *hi.Max).Take(&anchor).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	var gaps []gap
	from := uint64(0)
	if old.Max != nil {
		from = *old.Max
	} else {
		// Every row is recent: ids below the lowest may be in flight.
		var lo struct{ Min *uint64 }
		if err := db.Model(&models.Invalidation{}).Select("MIN(id) AS min").Scan(&lo).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if lo.Min != nil && *lo.Min > 1 {
			gaps = append(gaps, gap{lo: 1, hi: *lo.Min - 1, noticed: now})
		}
	}
	// The gaps of the window: none when it is dense (one count), else
	// found from its ids, read a page at a time (ids only, not rows).
	var n int64
	if err := db.Model(&models.Invalidation{}).Where("id > ? AND id <= ?", from, *hi.Max).Count(&n).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	for after := from; uint64(n) != *hi.Max-from && len(gaps) <= f.opt.MaxGapRanges; {
		var ids []uint64
		if err := db.Model(&models.Invalidation{}).Where("id > ? AND id <= ?", after, *hi.Max).
			Order("id").Limit(pollPage).Pluck("id", &ids).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		for _, id := range ids {
			if id > after+1 {
				gaps = append(gaps, gap{lo: after + 1, hi: id - 1, noticed: now})
			}
			after = id
		}
		if len(ids) < pollPage {
			break
		}
	}
	if len(gaps) > f.opt.MaxGapRanges {
		// Not an errRestart: starting over would find the same. The
		// window slides as time passes; until then nothing is trusted.
		return fmt.Errorf("read outbox: %d or more recent gap ranges, more than %d", len(gaps), f.opt.MaxGapRanges)
	}
	f.hi, f.anchor, f.gaps = *hi.Max, &anchor, gaps
	f.started = true
	return nil
}

// apply hands one outbox row to the target and moves the gap bookkeeping.
// A row above hi opens a gap for the ids it skipped (noticed now); a row
// at or below hi fills its gap, if it is in one.
func (f *Feed) apply(r models.Invalidation, now int64) {
	f.target.Invalidate(r.UserID, r.Revision)
	f.stats.applied.Add(1)
	if r.ID > f.hi {
		if r.ID > f.hi+1 {
			f.gaps = append(f.gaps, gap{lo: f.hi + 1, hi: r.ID - 1, noticed: now})
		}
		f.hi = r.ID
		row := r
		f.anchor = &row
		return
	}
	i, found := slices.BinarySearchFunc(f.gaps, r.ID, func(g gap, id uint64) int {
		switch {
		case g.hi < id:
			return -1
		case g.lo > id:
			return 1
		}
		return 0
	})
	if !found {
		return
	}
	f.stats.gapsFilled.Add(1)
	g := f.gaps[i]
	switch {
	case g.lo == g.hi:
		f.gaps = slices.Delete(f.gaps, i, i+1)
	case r.ID == g.lo:
		f.gaps[i].lo++
	case r.ID == g.hi:
		f.gaps[i].hi--
	default:
		f.gaps[i].hi = r.ID - 1
		f.gaps = slices.Insert(f.gaps, i+1, gap{lo: r.ID + 1, hi: g.hi, noticed: g.noticed})
	}
}

// Prune deletes outbox rows older than retention. It keeps the newest row,
// so that the auto-increment counter never goes back (some MySQL versions
// reset it to the highest id at a restart).
func Prune(ctx context.Context, db *gorm.DB, before time.Time) (int64, error) {
	var hi struct{ Max *uint64 }
	if err := db.WithContext(ctx).Model(&models.Invalidation{}).Select("MAX(id) AS max").Scan(&hi).Error; err != nil {
		return 0, models.Unavailable("prune outbox", err)
	}
	if hi.Max == nil {
		return 0, nil
	}
	res := db.WithContext(ctx).Where("created_at < ? AND id < ?", before.UTC(), *hi.Max).Delete(&models.Invalidation{})
	if res.Error != nil {
		return 0, models.Unavailable("prune outbox", res.Error)
	}
	return res.RowsAffected, nil
}

type feedCounters struct {
	reads, failures, applied, gapsFilled, gapsAbandoned, restarts atomic.Uint64
}

// Health is the state of the feed, for /readyz and the metrics.
type Health struct {
	// LastRead is when the last successful outbox read began (zero:
	// never).
	LastRead time.Time
	// Reads and Failures count outbox reads; Applied the rows applied.
	Reads, Failures, Applied uint64
	// GapsFilled are outbox ids found late, GapsAbandoned never were.
	GapsFilled, GapsAbandoned uint64
	// Restarts counts the times the feed lost its place (trust lapsed,
	// too many gaps, ids gone backwards), flushed the cache and started
	// over from the current maximum id.
	Restarts uint64
	// Redis is nil without Redis.
	Redis *RedisHealth
}

// RedisHealth is the state of the Redis subscription.
type RedisHealth struct {
	// Up is true when the subscription answered a ping recently.
	Up bool
	// LastPong is when it last did.
	LastPong time.Time
	// Received, Published and PublishFailed count messages;
	// Resubscribes counts (re)subscriptions, each of which flushed the
	// cache.
	Received, Published, PublishFailed, PublishDropped, Resubscribes uint64
}

// Health returns the feed's state.
func (f *Feed) Health() Health {
	h := Health{
		Reads: f.stats.reads.Load(), Failures: f.stats.failures.Load(), Applied: f.stats.applied.Load(),
		GapsFilled: f.stats.gapsFilled.Load(), GapsAbandoned: f.stats.gapsAbandoned.Load(),
		Restarts: f.stats.restarts.Load(),
	}
	if t := f.lastReadWall.Load(); t != 0 {
		h.LastRead = time.Unix(0, t)
	}
	if f.redis != nil {
		r := f.redis.health()
		h.Redis = &r
	}
	return h
}

// encode and decode are the Redis message format: "uid:rev".
func encode(uid uint64, rev int64) string {
	return strconv.FormatUint(uid, 10) + ":" + strconv.FormatInt(rev, 10)
}

func decode(s string) (uint64, int64, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("no colon")
	}
	uid, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	rev, err := strconv.ParseInt(b, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return uid, rev, nil
}
