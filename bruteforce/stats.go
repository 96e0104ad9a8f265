package bruteforce

import (
	"context"
	"sync/atomic"
	"time"
)

// CountingStore is a Store that counts what passes through it, for the
// metrics: refusals (a check that found a lock in force), failures, the
// locks they set, resets (a correct password or an admin unlock) and the
// store's errors. It counts in the store rather than in the Throttle so
// that the Throttle stays as it is and a server without metrics pays
// nothing.
type CountingStore struct {
	Store
	now func() time.Time

	refused, failures, locks, resets, errors atomic.Uint64
}

// Stats are the counters of a CountingStore, since it was built.
type Stats struct {
	// Refused counts checks that found the email locked: logins refused
	// before any password was compared.
	Refused uint64
	// Failures counts failed password checks, and Locks those of them
	// after which the email was locked.
	Failures, Locks uint64
	// Resets counts counts started over: a correct password, an unlock.
	Resets uint64
	// Errors counts calls the store could not answer.
	Errors uint64
}

// NewCountingStore wraps s; now is the Throttle's clock (nil: time.Now).
func NewCountingStore(s Store, now func() time.Time) *CountingStore {
	if now == nil {
		now = time.Now
	}
	return &CountingStore{Store: s, now: now}
}

func (c *CountingStore) LockedUntil(ctx context.Context, key Key) (time.Time, error) {
	until, err := c.Store.LockedUntil(ctx, key)
	switch {
	case err != nil:
		c.errors.Add(1)
	case until.After(c.now()):
		c.refused.Add(1)
	}
	return until, err
}

func (c *CountingStore) Fail(ctx context.Context, key Key, now time.Time, p Policy) (time.Time, error) {
	until, err := c.Store.Fail(ctx, key, now, p)
	if err != nil {
		c.errors.Add(1)
		return until, err
	}
	c.failures.Add(1)
	if until.After(now) {
		c.locks.Add(1)
	}
	return until, nil
}

func (c *CountingStore) Reset(ctx context.Context, key Key) error {
	err := c.Store.Reset(ctx, key)
	if err != nil {
		c.errors.Add(1)
	} else {
		c.resets.Add(1)
	}
	return err
}

// Stats returns the counters.
func (c *CountingStore) Stats() Stats {
	return Stats{
		Refused: c.refused.Load(), Failures: c.failures.Load(), Locks: c.locks.Load(),
		Resets: c.resets.Load(), Errors: c.errors.Load(),
	}
}
