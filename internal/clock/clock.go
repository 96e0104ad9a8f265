// Package clock holds Manual, a clock that stands still until it is moved.
//
// The server takes its clock as a function (authserver.Options.Now), so a
// test, or compare's scenarios, can step over an access token's lifetime or
// a throttle's delay without sleeping, and see the same instant on every
// instance that shares the clock. It lives in one place because the routes,
// bruteforce, ratelimit and remoteauth tests and compare all need the same
// one.
package clock

import (
	"sync"
	"time"
)

// Manual is a clock that moves only when Advance is called. It is safe for
// concurrent use.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// NewManual returns a clock that reads t until it is advanced.
func NewManual(t time.Time) *Manual { return &Manual{t: t} }

// Now is the clock's current time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Manual) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
