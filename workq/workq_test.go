package workq_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revocable/authserver/workq"
)

type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gated is a handler that reports each start and holds the job until
// released.
type gated struct {
	started chan int
	release chan struct{}
	running atomic.Int64
	peak    atomic.Int64
	done    sync.Map
}

func newGated() *gated {
	return &gated{started: make(chan int, 1000), release: make(chan struct{})}
}

func (g *gated) handle(ctx context.Context, job int) error {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	g.started <- job
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.done.Store(job, true)
	return nil
}

func newQueue(t *testing.T, cfg workq.Config, h func(context.Context, int) error) *workq.Queue[int] {
	t.Helper()
	q, err := workq.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// TestBounded: with one worker busy and Size jobs waiting, the next
// Enqueue is refused at once with ErrFull; the accepted ones all run.
func TestBounded(t *testing.T) {
	g := newGated()
	q := newQueue(t, workq.Config{Name: "test", Size: 2, Workers: 1}, g.handle)
	if err := q.Enqueue(1); err != nil {
		t.Fatal(err)
	}
	<-g.started
	for _, j := range []int{2, 3} {
		if err := q.Enqueue(j); err != nil {
			t.Fatalf("Enqueue(%d) with room: %v", j, err)
		}
	}
	if err := q.Enqueue(4); !errors.Is(err, workq.ErrFull) {
		t.Fatalf("Enqueue beyond Size = %v, want ErrFull", err)
	}
	if st := q.Stats(); st.Pending != 3 || st.Rejected != 1 {
		t.Fatalf("stats %+v, want 3 pending, 1 rejected", st)
	}
	for range 3 {
		g.release <- struct{}{}
	}
	if err := q.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, j := range []int{1, 2, 3} {
		if _, ok := g.done.Load(j); !ok {
			t.Fatalf("job %d did not run", j)
		}
	}
	if _, ok := g.done.Load(4); ok {
		t.Fatal("the refused job ran")
	}
	if st := q.Stats(); st.Pending != 0 || st.Done != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWorkers: never more than Workers jobs run at once.
func TestWorkers(t *testing.T) {
	g := newGated()
	q := newQueue(t, workq.Config{Name: "test", Size: 30, Workers: 3}, g.handle)
	for j := range 30 {
		if err := q.Enqueue(j); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-g.started
	}
	select {
	case j := <-g.started:
		t.Fatalf("job %d started while 3 workers were busy", j)
	default:
	}
	for i := range 30 {
		g.release <- struct{}{}
		if i < 27 {
			<-g.started
		}
	}
	if err := q.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := g.peak.Load(); p != 3 {
		t.Fatalf("peak %d jobs at once, want 3", p)
	}
}

// TestFailures: a job's error and a job's panic are logged and counted;
// the worker goes on; a job past Timeout sees its context end.
func TestFailures(t *testing.T) {
	var logs logBuf
	handle := func(ctx context.Context, job int) error {
		switch job {
		case 1:
			return errors.New("smtp: connection refused")
		case 2:
			panic("boom")
		case 3:
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	q := newQueue(t, workq.Config{Name: "reset-mail", Size: 10, Workers: 1, Timeout: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, handle)
	for _, j := range []int{1, 2, 3, 4} {
		if err := q.Enqueue(j); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Done != 1 || st.Failed != 3 {
		t.Fatalf("stats %+v, want 1 done, 3 failed", st)
	}
	out := logs.String()
	for _, want := range []string{"smtp: connection refused", "boom", "context deadline exceeded", "queue=reset-mail"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "level=ERROR"); n != 3 {
		t.Fatalf("%d error lines, want 3:\n%s", n, out)
	}
}

// TestClose: Close finishes the queued jobs, then refuses new ones; a
// Close that gives up cancels the running job and drops the queued ones.
func TestClose(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		g := newGated()
		q := newQueue(t, workq.Config{Name: "test", Size: 5, Workers: 1}, g.handle)
		for j := range 3 {
			_ = q.Enqueue(j)
		}
		go func() {
			for range 3 {
				g.release <- struct{}{}
			}
		}()
		if err := q.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := q.Stats(); st.Done != 3 || st.Pending != 0 {
			t.Fatalf("after Close %+v, want the 3 queued jobs done", st)
		}
		if err := q.Enqueue(9); !errors.Is(err, workq.ErrClosed) {
			t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		g := newGated()
		q := newQueue(t, workq.Config{Name: "test", Size: 5, Workers: 1}, g.handle)
		for j := range 3 {
			_ = q.Enqueue(j)
		}
		<-g.started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := q.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close with an ended context = %v", err)
		}
		if st := q.Stats(); st.Failed != 1 || st.Dropped != 2 || st.Done != 0 || st.Pending != 0 {
			t.Fatalf("after an abandoned Close %+v, want the running job canceled and 2 dropped", st)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, c := range []workq.Config{{Size: 0, Workers: 1}, {Size: 1, Workers: 0}, {Size: 1, Workers: 1, Timeout: -1}} {
		if _, err := workq.New(c, func(context.Context, int) error { return nil }); err == nil {
			t.Fatalf("New(%+v) accepted", c)
		}
	}
}
