// Package passhash runs bcrypt with bounded concurrency. bcrypt is meant
// to be slow: each hash or compare keeps a core busy for tens to hundreds
// of milliseconds, so a burst of logins would otherwise take every core,
// and token verification and refresh, which hash nothing, would queue
// behind them. A Hasher lets at most MaxConcurrent bcrypt runs proceed at
// once (by default one core fewer than the process has) and makes the
// others wait at most QueueTimeout; a request that waited that long gets
// ErrBusy, which the router answers with 503 and Retry-After.
//
// The package is not called "password" because that is the name every
// handler gives its password variable (and the routes tests their
// password constant), which an import of that name would shadow.
//
// The 72-byte limit of bcrypt stays with the caller: Hash refuses a longer
// password (bcrypt.ErrPasswordTooLong), but Compare, like bcrypt, ignores
// every byte after the 72nd, so the handlers must refuse longer passwords
// before calling it.
package passhash

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// ErrBusy is matched by the error of a call that could not get a hashing
// slot within the queue timeout, or whose context ended while it waited.
var ErrBusy = errors.New("password hashing is busy")

// MaxBytes is bcrypt's limit: it ignores every byte after the 72nd, so a
// longer password is refused rather than silently shortened.
const MaxBytes = 72

// CheckNew applies the rules of a new password: at least minLength
// characters and at most MaxBytes bytes. The API and the admin commands
// both ask it, so that their rules cannot drift apart; its error reads
// after the name of the field ("password must be ...").
func CheckNew(pw string, minLength int) error {
	if len(pw) > MaxBytes {
		return fmt.Errorf("must be at most %d bytes", MaxBytes)
	}
	if utf8.RuneCountInString(pw) < minLength {
		return fmt.Errorf("must be at least %d characters", minLength)
	}
	return nil
}

// DefaultQueueTimeout is how long a call waits for a slot by default:
// several bcrypt runs at the usual cost, long enough to absorb a burst,
// short enough that a client is told to come back rather than hang.
const DefaultQueueTimeout = 2 * time.Second

// DefaultMaxConcurrent leaves one core for everything else (token
// verification, refresh, the database driver, the runtime), and is at
// least 1.
func DefaultMaxConcurrent() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// Config sets up a Hasher; zero fields take their defaults.
type Config struct {
	// Cost is the bcrypt cost of new hashes and of the dummy hash
	// (bcrypt.MinCost to bcrypt.MaxCost; 0 is bcrypt.DefaultCost).
	Cost int
	// MaxConcurrent is how many bcrypt runs may proceed at once.
	MaxConcurrent int
	// QueueTimeout is the longest a call waits for a slot.
	QueueTimeout time.Duration
}

// Hasher hashes and compares passwords, a bounded number at a time.
type Hasher struct {
	cost    int
	slots   chan struct{}
	timeout time.Duration
	dummy   []byte

	waiting  atomic.Int64
	rejected atomic.Uint64

	// inSlot, when set (by this package's tests), runs while a call holds
	// a slot, before bcrypt.
	inSlot func()
}

// New builds a Hasher. It computes the dummy hash once, at the configured
// cost, so that CompareDummy costs what Compare costs.
func New(c Config) (*Hasher, error) {
	if c.Cost == 0 {
		c.Cost = bcrypt.DefaultCost
	}
	if c.Cost < bcrypt.MinCost || c.Cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d: must be between %d and %d", c.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.MaxConcurrent < 0 || c.QueueTimeout < 0 {
		return nil, errors.New("password hashing: max concurrent hashes and queue timeout must not be negative")
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent()
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	// A random password nobody knows: no input compares equal to it.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dummy password: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword(secret[:], c.Cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return &Hasher{cost: c.Cost, slots: make(chan struct{}, c.MaxConcurrent), timeout: c.QueueTimeout, dummy: dummy}, nil
}

// acquire waits for a slot; the caller must call the returned release.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		// Nobody waits for the answer: spend no core on it.
		h.rejected.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	select {
	case h.slots <- struct{}{}:
	default:
		h.waiting.Add(1)
		t := time.NewTimer(h.timeout)
		select {
		case h.slots <- struct{}{}:
			t.Stop()
			h.waiting.Add(-1)
		case <-t.C:
			h.waiting.Add(-1)
			h.rejected.Add(1)
			return nil, fmt.Errorf("%w: no hashing slot within %s", ErrBusy, h.timeout)
		case <-ctx.Done():
			t.Stop()
			h.waiting.Add(-1)
			h.rejected.Add(1)
			return nil, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		}
	}
	if h.inSlot != nil {
		h.inSlot()
	}
	return func() { <-h.slots }, nil
}

// Hash returns the bcrypt hash of pw at the configured cost.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	out, err := bcrypt.GenerateFromPassword([]byte(pw), h.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(out), nil
}

// Compare reports whether pw matches hash. A wrong password is (false,
// nil); an error is ErrBusy or a hash that is not bcrypt.
func (h *Hasher) Compare(ctx context.Context, hash, pw string) (bool, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("compare password: %w", err)
	}
}

// CompareDummy does the work of a Compare that fails, for a login whose
// email is unknown: it takes a slot and the time of one bcrypt at the
// configured cost, so that the answer does not tell the email is unknown.
// Its only error is ErrBusy, which the caller must answer like a busy
// Compare.
func (h *Hasher) CompareDummy(ctx context.Context, pw string) error {
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(pw))
	return nil
}

// RetryAfter is what to tell a client refused with ErrBusy: the queue
// timeout in whole seconds, at least 1s.
func (h *Hasher) RetryAfter() time.Duration {
	s := (h.timeout + time.Second - 1) / time.Second
	return max(1, s) * time.Second
}

// Stats are counters for metrics.
type Stats struct {
	// InFlight is how many bcrypt runs hold a slot now, and Slots how
	// many there are.
	InFlight, Slots int
	// Waiting is how many calls wait for a slot now.
	Waiting int64
	// Rejected counts the calls that got ErrBusy.
	Rejected uint64
}

// Stats returns the counters.
func (h *Hasher) Stats() Stats {
	return Stats{InFlight: len(h.slots), Slots: cap(h.slots), Waiting: h.waiting.Load(), Rejected: h.rejected.Load()}
}
