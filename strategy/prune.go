package strategy

import (
	"cmp"
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Pruning a big table: one DELETE of every expired row of ten million
// would lock them all (and, on InnoDB, the gaps between them) for as long
// as it runs, seconds to minutes, stalling the logins and refreshes that
// write the same table. So the prune walks the primary key in ranges and
// deletes the dead rows of one range per statement, each statement its
// own transaction. The range's size adapts so that one DELETE takes about
// pruneTarget: doubled while it is much faster, cut in proportion when it
// is slower. The lookup of a range's end is a plain read, which takes no
// lock.

const (
	// pruneTarget is the time one batch aims at, half of pruneBound.
	pruneTarget = 50 * time.Millisecond
	// pruneBound is how long a batch may hold its locks; PruneStats
	// counts the batches that took longer (a stalled database).
	pruneBound = 100 * time.Millisecond
	// Batch sizes, in primary-key values (live rows included).
	pruneFirstBatch = 1000
	pruneMinBatch   = 100
	pruneMaxBatch   = 50_000
)

// PruneOptions tune a prune; the zero value is the server's.
type PruneOptions struct {
	// MaxBatch caps the primary-key values one DELETE covers (0:
	// pruneMaxBatch). A smaller cap makes batches observable in tests.
	MaxBatch int
}

// PruneStats describe what a prune did.
type PruneStats struct {
	Rows int64
	// Batches counts the DELETE statements of the batched tables
	// (refresh tokens, sessions, reset tokens); Longest is the slowest.
	Batches int
	Longest time.Duration
	// Over counts the batches that took longer than 100 ms: with the
	// size adapting they are the database stalling, not the batch's size.
	Over int
	Took time.Duration
}

// batcher sizes the batches of one prune.
type batcher struct {
	size, max int
	stats     *PruneStats
}

func newBatcher(o PruneOptions, st *PruneStats) *batcher {
	m := o.MaxBatch
	if m <= 0 {
		m = pruneMaxBatch
	}
	return &batcher{size: min(pruneFirstBatch, m), max: m, stats: st}
}

// took adapts the size to how long a batch took.
func (b *batcher) took(d time.Duration) {
	b.stats.Batches++
	b.stats.Longest = max(b.stats.Longest, d)
	if d > pruneBound {
		b.stats.Over++
	}
	switch {
	case d < pruneTarget/2:
		b.size = min(b.size*2, b.max)
	case d > pruneTarget:
		b.size = max(int(int64(b.size)*int64(pruneTarget)/int64(d)), min(pruneMinBatch, b.max))
	}
}

// pruneRanges deletes the rows of model matching dead (with args) in
// primary-key ranges of at most b.size keys. The first key is greater
// than the zero value of K.
func pruneRanges[K cmp.Ordered](ctx context.Context, db *gorm.DB, model any, dead string, b *batcher, args ...any) (int64, error) {
	db = db.WithContext(ctx)
	var (
		lo    K
		total int64
	)
	for {
		var his []K
		err := db.Model(model).Where("id > ?", lo).Order("id").Offset(b.size-1).Limit(1).Pluck("id", &his).Error
		if err != nil {
			return total, models.Unavailable("prune", err)
		}
		q := db.Where("id > ?", lo)
		if len(his) > 0 {
			q = q.Where("id <= ?", his[0])
		}
		start := time.Now()
		res := q.Where("("+dead+")", args...).Delete(model)
		b.took(time.Since(start))
		if res.Error != nil {
			return total, models.Unavailable("prune", res.Error)
		}
		total += res.RowsAffected
		if len(his) == 0 {
			return total, nil
		}
		lo = his[0]
		if err := ctx.Err(); err != nil {
			return total, models.Unavailable("prune", err)
		}
	}
}
