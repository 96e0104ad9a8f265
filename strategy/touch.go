package strategy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// touchQueue records last_seen_at off the request path: a verification
// only notes that a login was seen, and a background loop writes the
// notes, so that no verification ever waits on a write. It is bounded:
// beyond maxPendingTouches notes, new ones are dropped (last_seen_at is
// informational: it orders eviction and the device list).
type touchQueue struct {
	t   Toucher
	db  *gorm.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[touchKey]time.Time
	// recent remembers the logins noted lately, so that a cached state
	// whose LastSeenAt is old does not note its login on every request.
	recent  sync.Map // touchKey -> time.Time
	recentN atomic.Int64
}

type touchKey struct {
	uid     uint64
	loginID string
}

const (
	maxPendingTouches = 10000
	// maxRecentTouches bounds recent; beyond it, it is cleared.
	maxRecentTouches  = 100000
	flushTouchesEvery = time.Second
)

func newTouchQueue(t Toucher, db *gorm.DB, log *slog.Logger) *touchQueue {
	return &touchQueue{t: t, db: db, log: log, pending: map[touchKey]time.Time{}}
}

// add notes that login loginID of user uid was seen at now.
func (q *touchQueue) add(uid uint64, loginID string, now time.Time) {
	k := touchKey{uid, loginID}
	if at, ok := q.recent.Load(k); ok && now.Sub(at.(time.Time)) < touchEvery {
		return
	}
	q.mu.Lock()
	if len(q.pending) < maxPendingTouches {
		q.pending[k] = now
	}
	q.mu.Unlock()
	if _, loaded := q.recent.Swap(k, now); !loaded {
		q.recentN.Add(1)
	}
}

// flushUser writes the pending notes of user uid now: a login about to
// evict the least recently seen device, and the device list, see what
// this instance noted.
func (q *touchQueue) flushUser(ctx context.Context, uid uint64) {
	q.mu.Lock()
	var batch map[touchKey]time.Time
	for k, at := range q.pending {
		if k.uid == uid {
			if batch == nil {
				batch = map[touchKey]time.Time{}
			}
			batch[k] = at
			delete(q.pending, k)
		}
	}
	q.mu.Unlock()
	q.write(ctx, batch)
}

// flush writes the pending notes.
func (q *touchQueue) flush(ctx context.Context) {
	q.mu.Lock()
	batch := q.pending
	q.pending = make(map[touchKey]time.Time, len(batch))
	q.mu.Unlock()
	q.write(ctx, batch)
}

func (q *touchQueue) write(ctx context.Context, batch map[touchKey]time.Time) {
	if q.recentN.Load() > maxRecentTouches {
		q.recent.Clear()
		q.recentN.Store(0)
	}
	failed := 0
	for k, at := range batch {
		if err := q.t.Touch(ctx, q.db, k.uid, k.loginID, at); err != nil {
			failed++
		}
	}
	if failed > 0 {
		q.log.Warn("recording last_seen_at failed", "logins", failed)
	}
}

// RunTouches writes the last-seen notes every second until ctx ends, then
// once more. Without it nothing records last_seen_at.
func (s *Service) RunTouches(ctx context.Context) {
	if s.touches == nil {
		return
	}
	t := time.NewTicker(flushTouchesEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.touches.flush(fctx)
			cancel()
			return
		case <-t.C:
			s.touches.flush(ctx)
		}
	}
}

// FlushTouches writes the pending last-seen notes now.
func (s *Service) FlushTouches(ctx context.Context) {
	if s.touches != nil {
		s.touches.flush(ctx)
	}
}
