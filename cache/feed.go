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
}

// Feed applies every committed invalidation to a Target: from the outbox
// table, read at least every MaxStaleness/4, and, when Redis is
// configured, from a pub/sub channel that other instances publish to
// after their commits.
//
// Reading the outbox in commit order. Auto-increment ids are handed out at
// insert, not at commit, so a row can become visible after a row with a
// higher id. The feed tracks gaps: an id below the highest id seen that
// has not been seen yet is pending, and is looked for again on every read
// until it appears or until a read that began more than GapTimeout after
// it was noticed still does not find it. No transaction lives longer than
// models.TxTimeout, so by then the id was rolled back and never will
// commit.
type Feed struct {
	db     *gorm.DB
	target Target
	opt    FeedOptions
	log    *slog.Logger

	// mu guards the poller state: one read at a time.
	mu      sync.Mutex
	hi      uint64
	pending map[uint64]time.Time
	started bool
	failing bool

	// lastRead is when (unix ns) the last successful read began.
	lastRead atomic.Int64
	stats    feedCounters

	redis *redisLink
}

// pollPage is how many outbox rows one query of a read fetches.
const pollPage = 5000

// DefaultGapTimeout is how long a missing outbox id is looked for: longer
// than any transaction can live (models.TxTimeout), with a margin for
// clock skew between instances.
const DefaultGapTimeout = 6 * models.TxTimeout

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
	f := &Feed{db: db, target: target, opt: o, log: o.Log, pending: map[uint64]time.Time{}}
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

// Poll reads the outbox once and applies what it finds. It returns the
// error of the read, if any; the cache stops being trusted on its own
// when reads keep failing.
func (f *Feed) Poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := time.Now()
	err := f.poll(ctx, start)
	if err != nil {
		f.stats.failures.Add(1)
		if !f.failing {
			f.log.Warn("cache: reading the invalidation outbox failed; the cache stays trusted until max_staleness has passed since the last good read", "err", err)
		}
		f.failing = true
		return err
	}
	if prev := f.lastRead.Load(); prev != 0 && start.UnixNano()-prev > int64(f.opt.MaxStaleness) {
		// The cache stopped being trusted. Start over from a consistent
		// point: nothing cached before survives.
		f.target.Flush()
		f.log.Info("cache: invalidation outbox readable again; cache flushed")
	}
	f.failing = false
	f.lastRead.Store(start.UnixNano())
	f.stats.reads.Add(1)
	f.target.Confirm(start)
	return nil
}

func (f *Feed) poll(ctx context.Context, start time.Time) error {
	ctx, cancel := context.WithTimeout(models.Background(ctx), max(f.opt.MaxStaleness, time.Second))
	defer cancel()
	db := f.db.WithContext(ctx)
	if !f.started {
		if err := f.begin(db, start); err != nil {
			return err
		}
	}
	// Read everything above the highest id seen, in pages: the cache is
	// confirmed only once every row committed before start is applied.
	var rows []models.Invalidation
	for after := f.hi; ; {
		var page []models.Invalidation
		if err := db.Where("id > ?", after).Order("id").Limit(pollPage).Find(&page).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		rows = append(rows, page...)
		if len(page) < pollPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(f.pending) > 0 {
		ids := make([]uint64, 0, len(f.pending))
		for id := range f.pending {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for chunk := range slices.Chunk(ids, 500) {
			var late []models.Invalidation
			if err := db.Where("id IN ?", chunk).Find(&late).Error; err != nil {
				return fmt.Errorf("read outbox gaps: %w", err)
			}
			rows = append(rows, late...)
		}
	}
	for _, r := range rows {
		f.apply(r, start)
	}
	for id, noticed := range f.pending {
		if start.Sub(noticed) > f.opt.GapTimeout {
			delete(f.pending, id)
			f.stats.gapsAbandoned.Add(1)
		}
	}
	return nil
}

// begin sets the starting point: every id up to the highest is taken as
// seen, except those that may still commit (ids above the highest one
// inserted more than gapTimeout ago), which are pending until found.
func (f *Feed) begin(db *gorm.DB, start time.Time) error {
	var hi, old struct{ Max *uint64 }
	if err := db.Model(&models.Invalidation{}).Select("MAX(id) AS max").Scan(&hi).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	if err := db.Model(&models.Invalidation{}).Where("created_at < ?", start.Add(-f.opt.GapTimeout).UTC()).
		Select("MAX(id) AS max").Scan(&old).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	var uid struct{ Max *uint64 }
	if err := db.Model(&models.User{}).Select("MAX(id) AS max").Scan(&uid).Error; err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if uid.Max != nil {
		f.target.SeeUser(*uid.Max)
	}
	if hi.Max == nil {
		f.hi = 0
		f.started = true
		return nil
	}
	from := uint64(0)
	if old.Max != nil {
		from = *old.Max
	}
	var recent []models.Invalidation
	if err := db.Where("id > ?", from).Order("id").Find(&recent).Error; err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	seen := make(map[uint64]bool, len(recent))
	for _, r := range recent {
		seen[r.ID] = true
	}
	for id := from + 1; id <= *hi.Max && len(f.pending) < 100000; id++ {
		if !seen[id] {
			f.pending[id] = start
		}
	}
	f.hi = *hi.Max
	f.started = true
	return nil
}

// apply hands one outbox row to the target and moves the gap bookkeeping.
func (f *Feed) apply(r models.Invalidation, now time.Time) {
	f.target.Invalidate(r.UserID, r.Revision)
	f.stats.applied.Add(1)
	if _, ok := f.pending[r.ID]; ok {
		delete(f.pending, r.ID)
		f.stats.gapsFilled.Add(1)
		return
	}
	if r.ID <= f.hi {
		return
	}
	for id := f.hi + 1; id < r.ID && len(f.pending) < 100000; id++ {
		f.pending[id] = now
	}
	f.hi = r.ID
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
	reads, failures, applied, gapsFilled, gapsAbandoned atomic.Uint64
}

// Health is the state of the feed, for /readyz and the metrics.
type Health struct {
	// LastRead is when the last successful outbox read began (zero:
	// never).
	LastRead time.Time
	// Reads and Failures count outbox reads; Applied the rows applied.
	Reads, Failures, Applied uint64
	// Pending is the number of outbox ids looked for; GapsFilled were
	// found late, GapsAbandoned never were.
	GapsFilled, GapsAbandoned uint64
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
	}
	if t := f.lastRead.Load(); t != 0 {
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
