// Package workq runs jobs off the request path on a bounded queue with a
// fixed number of workers. The password-reset request uses it: the 202
// must take the same time whether or not the account exists, so the token
// row and the mail are made here, after the answer, and a flood of
// requests fills the queue (and is refused) instead of growing memory or
// the number of goroutines.
package workq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned by Enqueue when the queue holds Size jobs already.
var ErrFull = errors.New("work queue is full")

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("work queue is closed")

// Config sets up a Queue.
type Config struct {
	// Name is the queue's name in log lines.
	Name string
	// Size is how many jobs may wait; Enqueue beyond it fails with ErrFull.
	Size int
	// Workers is how many jobs run at once.
	Workers int
	// Timeout bounds one job (its context ends then); 0 means none.
	Timeout time.Duration
	// Log receives one line per failed job; nil is slog.Default.
	Log *slog.Logger
}

// Queue is a bounded queue of jobs of type T.
type Queue[T any] struct {
	cfg    Config
	handle func(ctx context.Context, job T) error
	jobs   chan T
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when every worker has returned

	mu      sync.RWMutex // Enqueue holds it shared while it sends; Close exclusively
	closed  bool
	pending int           // queued or running, under idleMu
	idleMu  sync.Mutex    // guards pending and idle
	idle    chan struct{} // closed while pending == 0

	ok, failed, rejected, dropped atomic.Uint64
}

// New starts the workers. handle runs each job; its error is logged (it
// must carry no secret: no token, no password) and the job is dropped.
func New[T any](cfg Config, handle func(ctx context.Context, job T) error) (*Queue[T], error) {
	if cfg.Size < 1 || cfg.Workers < 1 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("work queue %q: size and workers must be at least 1, timeout not negative", cfg.Name)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue[T]{
		cfg: cfg, handle: handle, jobs: make(chan T, cfg.Size),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), idle: make(chan struct{}),
	}
	close(q.idle)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(q.work)
	}
	go func() {
		wg.Wait()
		close(q.done)
	}()
	return q, nil
}

// Enqueue hands job to the workers without waiting: ErrFull if Size jobs
// are waiting already, ErrClosed after Close.
func (q *Queue[T]) Enqueue(job T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	q.add(1)
	select {
	case q.jobs <- job:
		return nil
	default:
		q.add(-1)
		q.rejected.Add(1)
		return ErrFull
	}
}

func (q *Queue[T]) add(n int) {
	q.idleMu.Lock()
	defer q.idleMu.Unlock()
	if q.pending == 0 && n > 0 {
		q.idle = make(chan struct{})
	}
	q.pending += n
	if q.pending == 0 {
		close(q.idle)
	}
}

func (q *Queue[T]) work() {
	for job := range q.jobs {
		if q.ctx.Err() != nil {
			// Close gave up waiting: what is still queued is dropped.
			q.dropped.Add(1)
		} else {
			q.run(job)
		}
		q.add(-1)
	}
}

func (q *Queue[T]) run(job T) {
	ctx, cancel := q.ctx, context.CancelFunc(func() {})
	if q.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, q.cfg.Timeout)
	}
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			q.failed.Add(1)
			q.cfg.Log.Error("background job panicked", "queue", q.cfg.Name, "panic", fmt.Sprint(p))
		}
	}()
	if err := q.handle(ctx, job); err != nil {
		q.failed.Add(1)
		q.cfg.Log.Error("background job failed", "queue", q.cfg.Name, "err", err)
		return
	}
	q.ok.Add(1)
}

// Wait returns when no job is queued or running (or ctx ends): for tests
// and for a caller that wants the effects of what it enqueued.
func (q *Queue[T]) Wait(ctx context.Context) error {
	q.idleMu.Lock()
	idle := q.idle
	q.idleMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting jobs and lets the workers finish the queued ones.
// If ctx ends first, the running jobs' contexts are canceled, the jobs
// still queued are dropped, and Close returns ctx's error.
func (q *Queue[T]) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.done
		return fmt.Errorf("work queue %q: %w", q.cfg.Name, ctx.Err())
	}
}

// Stats are counters for metrics.
type Stats struct {
	// Pending is how many jobs are queued or running now.
	Pending int
	// Done, Failed, Rejected and Dropped count the jobs that succeeded,
	// failed (or panicked), were refused with ErrFull, and were left in
	// the queue when Close gave up.
	Done, Failed, Rejected, Dropped uint64
}

// Stats returns the counters.
func (q *Queue[T]) Stats() Stats {
	q.idleMu.Lock()
	p := q.pending
	q.idleMu.Unlock()
	return Stats{Pending: p, Done: q.ok.Load(), Failed: q.failed.Load(), Rejected: q.rejected.Load(), Dropped: q.dropped.Load()}
}
