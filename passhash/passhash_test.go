package passhash

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// gate holds every call that enters a slot until released, and records how
// many were inside at once.
type gate struct {
	entered chan struct{}
	release chan struct{}
	inside  atomic.Int64
	peak    atomic.Int64
}

func newGate(h *Hasher) *gate {
	g := &gate{entered: make(chan struct{}, 100), release: make(chan struct{})}
	h.inSlot = func() {
		n := g.inside.Add(1)
		for {
			p := g.peak.Load()
			if n <= p || g.peak.CompareAndSwap(p, n) {
				break
			}
		}
		g.entered <- struct{}{}
		<-g.release
		g.inside.Add(-1)
	}
	return g
}

func newHasher(t *testing.T, c Config) *Hasher {
	t.Helper()
	if c.Cost == 0 {
		c.Cost = bcrypt.MinCost
	}
	h, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// waitFor polls cond: for a goroutine to reach a blocking point, not a
// timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// TestConcurrencyBounded: with 2 slots and 10 callers, 2 are inside and 8
// wait; none gets in until one leaves, and never more than 2 at once.
func TestConcurrencyBounded(t *testing.T) {
	h := newHasher(t, Config{MaxConcurrent: 2, QueueTimeout: time.Hour})
	hash, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(h)
	const n = 10
	results := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				results[i], errs[i] = h.Compare(context.Background(), hash, "pw")
			case 1:
				errs[i] = h.CompareDummy(context.Background(), "pw")
				results[i] = true
			default:
				var out string
				out, errs[i] = h.Hash(context.Background(), "pw")
				results[i] = strings.HasPrefix(out, "$2a$")
			}
		})
	}
	<-g.entered
	<-g.entered
	waitFor(t, "8 callers waiting", func() bool { return h.Stats().Waiting == n-2 })
	select {
	case <-g.entered:
		t.Fatal("a third call got a slot while two were held")
	default:
	}
	if st := h.Stats(); st.InFlight != 2 || st.Slots != 2 {
		t.Fatalf("stats %+v, want 2 in flight of 2", st)
	}
	for i := 2; i < n; i++ {
		g.release <- struct{}{}
		<-g.entered
		if st := h.Stats(); st.InFlight != 2 {
			t.Fatalf("after %d releases %d in flight, want 2", i-1, st.InFlight)
		}
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !results[i] {
			t.Fatalf("call %d: %v, %v", i, results[i], errs[i])
		}
	}
	if p := g.peak.Load(); p != 2 {
		t.Fatalf("peak of %d calls inside at once, want 2", p)
	}
	if st := h.Stats(); st.InFlight != 0 || st.Waiting != 0 || st.Rejected != 0 {
		t.Fatalf("stats after all calls %+v", st)
	}
}

// TestQueueTimeout: a call that cannot get a slot within the timeout, or
// whose context ends first, gets ErrBusy and runs no bcrypt.
func TestQueueTimeout(t *testing.T) {
	h := newHasher(t, Config{MaxConcurrent: 1, QueueTimeout: 20 * time.Millisecond})
	hash, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h.Compare(context.Background(), hash, "pw")
	}()
	<-g.entered

	cases := []struct {
		name string
		ctx  func() context.Context
		call func(ctx context.Context) error
		also error
	}{
		{"hash, queue timeout", context.Background, func(ctx context.Context) error { _, err := h.Hash(ctx, "pw"); return err }, nil},
		{"compare, queue timeout", context.Background, func(ctx context.Context) error { _, err := h.Compare(ctx, hash, "pw"); return err }, nil},
		{"dummy, queue timeout", context.Background, func(ctx context.Context) error { return h.CompareDummy(ctx, "pw") }, nil},
		{"compare, context canceled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, func(ctx context.Context) error { _, err := h.Compare(ctx, hash, "pw"); return err }, context.Canceled},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(c.ctx())
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("got %v, want ErrBusy", err)
			}
			if c.also != nil && !errors.Is(err, c.also) {
				t.Fatalf("got %v, want it to match %v too", err, c.also)
			}
			if st := h.Stats(); st.Rejected != uint64(i+1) || st.Waiting != 0 || st.InFlight != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
	select {
	case <-g.entered:
		t.Fatal("a refused call ran bcrypt")
	default:
	}
	g.release <- struct{}{}
	<-done
	// With the slot free, a context that ends while waiting is ErrBusy too.
	g2 := newGate(h)
	go func() { _, _ = h.Hash(context.Background(), "pw") }()
	<-g2.entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.CompareDummy(ctx, "pw") }()
	waitFor(t, "a caller waiting", func() bool { return h.Stats().Waiting == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled while waiting: %v, want ErrBusy and context.Canceled", err)
	}
	g2.release <- struct{}{}
}

func TestHashCompare(t *testing.T) {
	h := newHasher(t, Config{Cost: 5})
	ctx := context.Background()
	pw72 := strings.Repeat("p", 72)
	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost([]byte(hash)); err != nil || c != 5 {
		t.Fatalf("hash cost %d, %v; want 5", c, err)
	}
	again, _ := h.Hash(ctx, "correct horse")
	if again == hash {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	h72, err := h.Hash(ctx, pw72)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		hash string
		pw   string
		want bool
		err  bool
	}{
		{"right password", hash, "correct horse", true, false},
		{"wrong password", hash, "correct horsf", false, false},
		{"empty password", hash, "", false, false},
		{"prefix", hash, "correct", false, false},
		{"72 bytes", h72, pw72, true, false},
		// bcrypt ignores bytes past 72: refusing longer passwords is the
		// caller's job (routes checks maxPasswordBytes first).
		{"73 bytes, first 72 right", h72, pw72 + "x", true, false},
		{"not a bcrypt hash", "plain", "correct horse", false, true},
		{"empty hash", "", "correct horse", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := h.Compare(ctx, c.hash, c.pw)
			if ok != c.want || (err != nil) != c.err {
				t.Fatalf("Compare = %v, %v; want %v, error %v", ok, err, c.want, c.err)
			}
			if err != nil && errors.Is(err, ErrBusy) {
				t.Fatalf("a bad hash reported as busy: %v", err)
			}
		})
	}
	if _, err := h.Hash(ctx, pw72+"x"); !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Fatalf("Hash of 73 bytes: %v, want bcrypt.ErrPasswordTooLong", err)
	}
	if err := h.CompareDummy(ctx, "anything"); err != nil {
		t.Fatalf("CompareDummy: %v", err)
	}
	if c, err := bcrypt.Cost(h.dummy); err != nil || c != 5 {
		t.Fatalf("dummy hash cost %d, %v; want the configured 5", c, err)
	}
}

func TestConfig(t *testing.T) {
	cases := []struct {
		name      string
		c         Config
		ok        bool
		slots     int
		retryWant time.Duration
	}{
		{"defaults", Config{Cost: 4}, true, DefaultMaxConcurrent(), 2 * time.Second},
		{"explicit", Config{Cost: 4, MaxConcurrent: 3, QueueTimeout: 2500 * time.Millisecond}, true, 3, 3 * time.Second},
		{"short timeout", Config{Cost: 4, MaxConcurrent: 1, QueueTimeout: 10 * time.Millisecond}, true, 1, time.Second},
		{"cost too low", Config{Cost: 3}, false, 0, 0},
		{"cost too high", Config{Cost: 32}, false, 0, 0},
		{"negative slots", Config{Cost: 4, MaxConcurrent: -1}, false, 0, 0},
		{"negative timeout", Config{Cost: 4, QueueTimeout: -time.Second}, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := New(c.c)
			if (err == nil) != c.ok {
				t.Fatalf("New = %v, want ok=%v", err, c.ok)
			}
			if !c.ok {
				return
			}
			if st := h.Stats(); st.Slots != c.slots {
				t.Fatalf("%d slots, want %d", st.Slots, c.slots)
			}
			if got := h.RetryAfter(); got != c.retryWant {
				t.Fatalf("RetryAfter %s, want %s", got, c.retryWant)
			}
		})
	}
	if DefaultMaxConcurrent() < 1 {
		t.Fatal("DefaultMaxConcurrent below 1")
	}
}
