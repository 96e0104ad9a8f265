// Package bruteforce throttles password guessing per account, in the manner
// of Keycloak's brute-force detection and Authelia's regulation: after
// MaxFailures consecutive failed password checks for one normalized email,
// password checks for that email are refused until a delay has passed, and
// each further failure doubles the delay, up to MaxDelay. A success starts
// the count over.
//
// It is keyed by the email, not by the account, so that an unknown email is
// throttled exactly like a known one and a lock reveals no account; and it
// is separate from per-IP rate limiting (package ratelimit) because a
// guesser spread over many addresses still aims at one account.
//
// The counts live in a Store shared by the instances: the database
// (DBStore, the default) or Redis (RedisStore). When the store does not
// answer, Check, Fail and Succeed return an error matching ErrUnavailable
// and the caller must refuse the login with 503: failing open would hand an
// attacker unlimited guesses for the length of an outage he may have caused.
//
// The package is named for the config section (bruteforce.*) rather than
// Authelia's "regulation", which says less to a reader of this code.
package bruteforce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrUnavailable is matched by every error of a store that could not
// answer; the router maps it to 503.
var ErrUnavailable = errors.New("brute-force throttle store unavailable")

// DefaultResetAfter is Keycloak's "failure reset time": failures further
// apart than this are not consecutive.
const DefaultResetAfter = 12 * time.Hour

// Policy is when and for how long an email is locked.
type Policy struct {
	// MaxFailures consecutive failures lock the email; 0 turns the throttle
	// off.
	MaxFailures int
	// BaseDelay is the first lock; each further failure doubles it.
	BaseDelay time.Duration
	// MaxDelay caps the lock.
	MaxDelay time.Duration
	// ResetAfter: a failure more than this after the previous one starts
	// the count over (0 means DefaultResetAfter). It also bounds how long a
	// row is kept: an email nobody tries again is forgotten.
	ResetAfter time.Duration
}

// Off reports whether the throttle does nothing.
func (p Policy) Off() bool { return p.MaxFailures <= 0 }

// Validate refuses a policy that cannot work.
func (p Policy) Validate() error {
	switch {
	case p.MaxFailures < 0:
		return errors.New("bruteforce.max_failures must be 0 (off) or more")
	case p.Off():
		return nil
	case p.BaseDelay <= 0:
		return errors.New("bruteforce.base_delay must be positive")
	case p.MaxDelay < p.BaseDelay:
		return errors.New("bruteforce.max_delay must be at least bruteforce.base_delay")
	case p.ResetAfter < 0 || (p.ResetAfter > 0 && p.ResetAfter <= p.MaxDelay):
		return errors.New("the failure reset time must be longer than bruteforce.max_delay")
	}
	return nil
}

func (p Policy) resetAfter() time.Duration {
	if p.ResetAfter <= 0 {
		return DefaultResetAfter
	}
	return p.ResetAfter
}

// Delay is the lock that the failures-th consecutive failure sets: none
// below MaxFailures, BaseDelay at it, doubling with each one after, capped
// at MaxDelay.
func (p Policy) Delay(failures int64) time.Duration {
	if p.Off() || failures < int64(p.MaxFailures) {
		return 0
	}
	d := p.BaseDelay
	for i := int64(p.MaxFailures); i < failures && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Key identifies an email in a store: HMAC-SHA256 of the normalized email.
type Key [32]byte

// Store keeps the failure counts. Implementations must count concurrent
// failures exactly (no lost update) and be shared by every instance.
type Store interface {
	// LockedUntil is the end of key's lock; the zero time if none.
	LockedUntil(ctx context.Context, key Key) (time.Time, error)
	// Fail counts a failure at now and returns the lock that is now in
	// force (the later of the existing one and the one this failure sets).
	Fail(ctx context.Context, key Key, now time.Time, p Policy) (time.Time, error)
	// Reset forgets key.
	Reset(ctx context.Context, key Key) error
}

// Options are a Throttle's settings besides its store.
type Options struct {
	Policy
	// KeySecret keys the hash of emails. Instances and the admin CLI must
	// use the same one; nil hashes with plain SHA-256.
	KeySecret []byte
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Throttle is the per-email brute-force throttle.
type Throttle struct {
	store  Store
	policy Policy
	secret []byte
	now    func() time.Time
}

// New builds a Throttle on store.
func New(store Store, o Options) (*Throttle, error) {
	if err := o.Policy.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Throttle{store: store, policy: o.Policy, secret: o.KeySecret, now: o.Now}, nil
}

// Key hashes a normalized email. The caller normalizes: the throttle must
// see the same string for every spelling the login accepts.
func (t *Throttle) Key(email string) Key {
	var k Key
	if t.secret == nil {
		return sha256.Sum256([]byte(email))
	}
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(email))
	copy(k[:], m.Sum(nil))
	return k
}

// Check is called before any password check for email. A positive
// retryAfter (whole seconds, at least 1s) means refuse with 429 and
// Retry-After, whether or not the password would be right, and without
// hashing anything.
func (t *Throttle) Check(ctx context.Context, email string) (retryAfter time.Duration, err error) {
	if t.policy.Off() {
		return 0, nil
	}
	until, err := t.store.LockedUntil(ctx, t.Key(email))
	if err != nil {
		return 0, err
	}
	if left := until.Sub(t.now()); left > 0 {
		return wholeSeconds(left), nil
	}
	return 0, nil
}

// Fail counts a failed password check for email. lockedFor is positive
// when email is now locked, so that the caller can log the lock.
func (t *Throttle) Fail(ctx context.Context, email string) (lockedFor time.Duration, err error) {
	if t.policy.Off() {
		return 0, nil
	}
	now := t.now()
	until, err := t.store.Fail(ctx, t.Key(email), now, t.policy)
	if err != nil {
		return 0, err
	}
	if left := until.Sub(now); left > 0 {
		return left, nil
	}
	return 0, nil
}

// Succeed starts email's count over after a correct password.
func (t *Throttle) Succeed(ctx context.Context, email string) error {
	if t.policy.Off() {
		return nil
	}
	return t.store.Reset(ctx, t.Key(email))
}

// Unlock lifts email's lock and forgets its failures (the admin command).
// It works with the throttle off too, so that turning it off and unlocking
// an account that a previous run locked are independent.
func (t *Throttle) Unlock(ctx context.Context, email string) error {
	return t.store.Reset(ctx, t.Key(email))
}

func wholeSeconds(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

func unavailable(op string, err error) error {
	return fmt.Errorf("bruteforce: %s: %w: %w", op, ErrUnavailable, err)
}
