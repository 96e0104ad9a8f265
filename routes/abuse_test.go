package routes_test

// Abuse resistance through the real router (issue 9): every per-IP rate
// limit answers 429 rate_limited with Retry-After and changes nothing; the
// client IP follows server.trusted_proxies, mounted or not;
// reset_per_account answers 202 and sends nothing, and reset tokens respect
// the cooldown and the live limit; the brute-force throttle treats known
// and unknown emails alike, survives a restart, starts over after a success
// and counts the password checks of PUT /me/password and DELETE /me; two
// servers share one budget through Redis and fall back to their own when it
// dies; bcrypt is bounded while verification and refresh go on; 1,000
// logins of one user all succeed under every strategy, and devices.max
// keeps its meaning below the ceiling.
//
// The harness turns every control off (noLimits); each test turns on the
// ones it is about.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/redistest"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

// abState is what a refused request must leave as it was: the rows of every
// table a request can write, and the columns that change without adding a
// row (a password or any revocation state bumps users.revision; a
// refresh, a reset or a failure count changes a row in place).
type abState struct {
	Users, Revisions                           int64
	RefreshTokens, RefreshUsed, RefreshRevoked int64
	ResetTokens, ResetUsed                     int64
	Sessions, SessionsRevoked, SessionsSeen    int64
	AuditEvents, Invalidations                 int64
	Throttles, Failures, LockedUntil           int64
}

func abSnapshot(e *env) abState {
	e.t.Helper()
	sum := func(model any, expr string) int64 {
		var n int64
		if err := e.db.Model(model).Select("COALESCE(" + expr + ", 0)").Scan(&n).Error; err != nil {
			e.t.Fatalf("snapshot: %v", err)
		}
		return n
	}
	return abState{
		Users: e.count(&models.User{}, "1 = 1"), Revisions: sum(&models.User{}, "SUM(revision)"),
		RefreshTokens:   e.count(&models.RefreshToken{}, "1 = 1"),
		RefreshUsed:     e.count(&models.RefreshToken{}, "used_at IS NOT NULL"),
		RefreshRevoked:  e.count(&models.RefreshToken{}, "revoked_at IS NOT NULL"),
		ResetTokens:     e.count(&models.ResetToken{}, "1 = 1"),
		ResetUsed:       e.count(&models.ResetToken{}, "used_at IS NOT NULL"),
		Sessions:        e.count(&models.Session{}, "1 = 1"),
		SessionsRevoked: e.count(&models.Session{}, "revoked_at IS NOT NULL"),
		SessionsSeen:    e.count(&models.Session{}, "last_seen_at > created_at"),
		AuditEvents:     e.count(&models.AuditEvent{}, "1 = 1"),
		Invalidations:   e.count(&models.Invalidation{}, "1 = 1"),
		Throttles:       e.count(&models.LoginThrottle{}, "1 = 1"),
		Failures:        sum(&models.LoginThrottle{}, "SUM(failures)"),
		LockedUntil:     sum(&models.LoginThrottle{}, "MAX(locked_until_micros)"),
	}
}

// abWantLimited fails unless r is 429 rate_limited in the error envelope
// with a Retry-After of whole seconds, at least 1, and returns it.
func abWantLimited(t testing.TB, what string, r *resp) int {
	t.Helper()
	apiWantErr(t, what, r, http.StatusTooManyRequests, "rate_limited")
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds, at least 1", what, r.Header.Get("Retry-After"))
	}
	return n
}

// abWantSame fails unless two answers are indistinguishable to a client:
// status, body but for the request id, and every header but
// X-Request-Id, Retry-After included.
func abWantSame(t testing.TB, what string, a, b *resp) {
	t.Helper()
	secWantSame(t, what, a, b)
	headers := func(r *resp) http.Header {
		h := r.Header.Clone()
		h.Del("X-Request-Id")
		return h
	}
	ha, hb := headers(a), headers(b)
	keys := func(h http.Header) []string {
		out := make([]string, 0, len(h))
		for k := range h {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(keys(ha), keys(hb)) {
		t.Fatalf("%s: headers differ: %v vs %v", what, ha, hb)
	}
	for k := range ha {
		if !slices.Equal(ha[k], hb[k]) {
			t.Fatalf("%s: header %s differs: %q vs %q", what, k, ha[k], hb[k])
		}
	}
}

// abLogin logs email(1) in without the verification sessionOf does, so
// that it spends nothing of a verify_per_ip budget.
func abLogin(e *env, device string) session {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": email(1), "password": password, "device_name": device}})
	s := session{access: r.str("access_token"), refresh: r.str("refresh_token")}
	if s.access == "" || s.refresh == "" {
		e.t.Fatalf("no tokens in %s", r.Raw)
	}
	return s
}

// abBreakHash replaces the stored password hash of addr with one bcrypt
// cannot read, and returns what puts it back. While it is broken a request
// that runs bcrypt for that account answers 500 internal_error, so a 429
// then proves that no bcrypt ran, without timing anything. (Under the
// per-user-key strategies the account's tokens do not verify meanwhile.)
func abBreakHash(e *env, addr string) (restore func()) {
	e.t.Helper()
	var u models.User
	if err := e.db.Take(&u, "email = ?", addr).Error; err != nil {
		e.t.Fatalf("load %s: %v", addr, err)
	}
	set := func(hash string) {
		if err := e.db.Model(&models.User{}).Where("id = ?", u.ID).Update("password_hash", hash).Error; err != nil {
			e.t.Fatalf("set the password hash of %s: %v", addr, err)
		}
	}
	set("not a bcrypt hash")
	return func() { set(u.PasswordHash) }
}

// abInstance is another server on e's database, with e's secret, clock,
// mailer and configuration: a second instance, or the same one after a
// restart. log nil discards its logs.
func (e *env) abInstance(log *slog.Logger) *env {
	e.t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := startServer(e.t, authserver.Options{Config: e.cfg, DB: e.db, Secret: testSecret, Log: log, Mailer: e.mailer, Now: e.clock.Now})
	c := *e
	c.srv, c.tokens, c.handler, c.verifier = srv, srv.Tokens(), srv.Handler(), nil
	return &c
}

// abThrottle turns the brute-force throttle on: 3 failures lock for 30s,
// doubling up to 15 minutes.
func abThrottle(c *config.Config) {
	c.BruteForce.MaxFailures = 3
	c.BruteForce.BaseDelay = 30 * time.Second
	c.BruteForce.MaxDelay = 15 * time.Minute
}

// abRuleBudget is the budget of every rule under test: 2 per minute, so
// the third request at one instant is refused and one more is allowed
// every 30 seconds.
const abRuleBudget = "2/1m"

// TestRateLimitRules: for every rule, the requests within the budget pass,
// and one more is refused with 429 rate_limited and Retry-After before
// anything of it runs: each refused request would have changed something
// (created a user, a token, a reset, counted a failure, changed the
// password), and nothing changed. Once Retry-After has passed, it passes.
func TestRateLimitRules(t *testing.T) {
	cases := []struct {
		rule string
		set  func(c *config.Config)
		// spend uses up the budget (each request must pass) and returns
		// requests that would change something if they ran.
		spend func(t *testing.T, e *env) []req
		// bcrypt: the refused requests would run bcrypt for email(1),
		// whose hash is broken while they are sent (abBreakHash).
		bcrypt bool
	}{
		{"login_per_ip", func(c *config.Config) {
			c.RateLimit.LoginPerIP = abRuleBudget
			// So that a wrong password that ran would count.
			abThrottle(c)
		}, func(t *testing.T, e *env) []req {
			e.register(email(1))
			abLogin(e, "laptop")
			apiWantNoLogin(e, "wrong password within the budget", email(1), "wrong password")
			return []req{
				{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}},
				{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": "wrong password"}},
				{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(2), "password": "wrong password"}},
			}
		}, true},
		{"register_per_ip", func(c *config.Config) { c.RateLimit.RegisterPerIP = abRuleBudget }, func(t *testing.T, e *env) []req {
			e.register(email(1))
			e.register(email(2))
			return []req{{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": email(3), "password": password}}}
		}, false},
		{"refresh_per_ip", func(c *config.Config) { c.RateLimit.RefreshPerIP = abRuleBudget }, func(t *testing.T, e *env) []req {
			e.register(email(1))
			s := abLogin(e, "laptop")
			for i := range 2 {
				r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": s.refresh}})
				if s.refresh = r.str("refresh_token"); s.refresh == "" {
					t.Fatalf("refresh %d: no refresh token in %s", i, r.Raw)
				}
			}
			return []req{{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": s.refresh}}}
		}, false},
		{"reset_per_ip (request)", func(c *config.Config) {
			c.RateLimit.ResetPerIP = abRuleBudget
			c.Reset.Cooldown = 0
		}, func(t *testing.T, e *env) []req {
			e.register(email(1))
			for range 2 {
				e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
			}
			if n := e.mailer.Sent(email(1)); n != 2 {
				t.Fatalf("%d reset mails within the budget, want 2", n)
			}
			return []req{{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}}}
		}, false},
		{"reset_per_ip (confirm)", func(c *config.Config) { c.RateLimit.ResetPerIP = abRuleBudget }, func(t *testing.T, e *env) []req {
			e.register(email(1))
			e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
			token := e.mailer.Last(email(1))
			if token == "" {
				t.Fatal("no reset mail")
			}
			// Confirmation shares the budget: it hashes the new password.
			apiWantErr(t, "confirm with a dead token within the budget",
				e.send(req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": "dead", "new_password": "another password"}}),
				http.StatusBadRequest, "invalid_reset_token")
			return []req{{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": token, "new_password": "another password"}}}
		}, false},
		{"verify_per_ip", func(c *config.Config) { c.RateLimit.VerifyPerIP = abRuleBudget }, func(t *testing.T, e *env) []req {
			e.register(email(1))
			a, b := abLogin(e, "laptop"), abLogin(e, "phone")
			// A minute on, a verification notes the device as seen.
			e.clock.Advance(time.Minute)
			// Every method of forward auth shares the budget.
			e.do(http.StatusOK, req{method: "GET", path: "/api/v1/auth/verify", token: a.access})
			e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/verify", token: a.access})
			var out []req
			for _, m := range []string{"GET", "HEAD", "DELETE"} {
				out = append(out, req{method: m, path: "/api/v1/auth/verify", token: b.access})
			}
			return out
		}, false},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, c := range cases {
			t.Run(c.rule, func(t *testing.T) {
				e := newEnv(t, driver, "session_table", c.set).apiBind(t)
				over := c.spend(t, e)
				// What the allowed requests noted for later (last seen)
				// is written before the snapshot.
				e.tokens.FlushTouches(t.Context())
				restore := func() {}
				if c.bcrypt {
					restore = abBreakHash(e, email(1))
				}
				before, mails := abSnapshot(e), e.mailer.Sent(email(1))
				retry := 0
				for _, r := range over {
					what := fmt.Sprintf("%s %s over %s", r.method, r.path, c.rule)
					got := e.send(r)
					if r.method == "HEAD" {
						// No body to a HEAD: status and header only.
						if got.Code != http.StatusTooManyRequests || got.Header.Get("Retry-After") == "" {
							t.Fatalf("%s: %d, Retry-After %q; want 429 with Retry-After", what, got.Code, got.Header.Get("Retry-After"))
						}
						continue
					}
					retry = abWantLimited(t, what, got)
				}
				restore()
				// And what a refused request would have noted, had it run.
				e.tokens.FlushTouches(t.Context())
				if after := abSnapshot(e); after != before {
					t.Fatalf("requests over %s changed the database:\n before %+v\n after  %+v", c.rule, before, after)
				}
				if n := e.mailer.Sent(email(1)); n != mails {
					t.Fatalf("requests over %s sent %d mails", c.rule, n-mails)
				}
				if retry > 60 {
					t.Fatalf("Retry-After %d for a rule of 2 a minute, want at most 60", retry)
				}
				// Retry-After tells the truth: after it, the request passes.
				e.clock.Advance(time.Duration(retry) * time.Second)
				if got := e.send(over[0]); got.Code == http.StatusTooManyRequests || got.Code >= 500 {
					t.Fatalf("%s %s after Retry-After (%ds): %d %s", over[0].method, over[0].path, retry, got.Code, got.Raw)
				}
			})
		}
	})
}

// TestRateLimitClientIP: the per-IP key is the client IP as
// server.trusted_proxies lets the router see it. A client that talks to the
// server directly cannot escape its budget by sending X-Forwarded-For or
// X-Real-IP; behind a trusted proxy the forwarded client is the key, and
// what the client itself put in front of X-Forwarded-For is ignored. IPv6
// clients are counted per /64.
func TestRateLimitClientIP(t *testing.T) {
	type step struct {
		peer   string
		header map[string]string
		want   int
	}
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	cases := []struct {
		name    string
		trusted []string
		steps   []step
	}{
		{"untrusted peer rotating X-Forwarded-For", nil, []step{
			{"192.0.2.10:1234", xff("198.51.100.1"), http.StatusOK},
			{"192.0.2.10:1234", xff("198.51.100.2"), http.StatusOK},
			{"192.0.2.10:1234", xff("198.51.100.3"), http.StatusTooManyRequests},
			{"192.0.2.10:4321", map[string]string{"X-Real-IP": "198.51.100.4"}, http.StatusTooManyRequests},
			{"192.0.2.10:1234", map[string]string{"X-Forwarded-For": "198.51.100.5", "X-Real-IP": "198.51.100.6"}, http.StatusTooManyRequests},
			// Another peer has a budget of its own.
			{"192.0.2.11:1234", xff("198.51.100.3"), http.StatusOK},
		}},
		{"trusted proxy: the forwarded client is the key", []string{"192.0.2.0/24"}, []step{
			{"192.0.2.10:1234", xff("198.51.100.1"), http.StatusOK},
			{"192.0.2.10:1234", xff("198.51.100.1"), http.StatusOK},
			{"192.0.2.10:1234", xff("198.51.100.1"), http.StatusTooManyRequests},
			// The same client through another of our proxies.
			{"192.0.2.11:1234", xff("198.51.100.1"), http.StatusTooManyRequests},
			// The client prepends addresses of its choice; the proxy
			// appends the one it saw.
			{"192.0.2.10:1234", xff("203.0.113.7, 198.51.100.1"), http.StatusTooManyRequests},
			{"192.0.2.10:1234", xff("203.0.113.8, 198.51.100.1"), http.StatusTooManyRequests},
			// Another client behind the proxy.
			{"192.0.2.10:1234", xff("198.51.100.2"), http.StatusOK},
			// A direct peer outside the trusted range cannot claim to be
			// a fresh client.
			{"203.0.113.50:1234", xff("198.51.100.9"), http.StatusOK},
			{"203.0.113.50:1234", xff("198.51.100.10"), http.StatusOK},
			{"203.0.113.50:1234", xff("198.51.100.11"), http.StatusTooManyRequests},
		}},
		{"IPv6 clients per /64", nil, []step{
			{"[2001:db8:1:2::1]:1234", nil, http.StatusOK},
			{"[2001:db8:1:2::ffff]:1234", nil, http.StatusOK},
			{"[2001:db8:1:2:abcd:ef01:2345:6789]:1234", nil, http.StatusTooManyRequests},
			{"[2001:db8:1:3::1]:1234", nil, http.StatusOK},
		}},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := newEnv(t, driver, "password_key", func(cfg *config.Config) {
					cfg.RateLimit.LoginPerIP = abRuleBudget
					cfg.Server.TrustedProxies = c.trusted
				}).apiBind(t)
				e.register(email(1))
				for i, s := range c.steps {
					r := e.send(req{method: "POST", path: "/api/v1/auth/login", peer: s.peer, header: s.header,
						body: map[string]string{"email": email(1), "password": password}})
					what := fmt.Sprintf("step %d (peer %s, %v)", i, s.peer, s.header)
					if s.want == http.StatusTooManyRequests {
						abWantLimited(t, what, r)
					} else if r.Code != s.want {
						t.Fatalf("%s: %d %s, want %d", what, r.Code, r.Raw, s.want)
					}
				}
			})
		}
	})
}

// TestResetPerAccount: over reset_per_account a reset request still
// answers 202, the same 202 as any other, and nothing is made or mailed;
// spellings of one address share its budget; an unknown address gets the
// same answers.
func TestResetPerAccount(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) {
			c.RateLimit.ResetPerAccount = "1/1h"
			c.Reset.Cooldown = 0
		})
		e.register(email(1))
		reset := func(addr string) *resp {
			return e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": addr}})
		}
		first := reset(email(1))
		if n := e.mailer.Sent(email(1)); n != 1 {
			t.Fatalf("first reset: %d mails, want 1", n)
		}
		before := abSnapshot(e)
		for _, addr := range []string{email(1), " USER1@Example.com "} {
			abWantSame(t, "reset of "+addr+" over the account's budget", reset(addr), first)
		}
		if n := e.mailer.Sent(email(1)); n != 1 {
			t.Fatalf("over reset_per_account: %d mails, want still 1", n)
		}
		if after := abSnapshot(e); after != before {
			t.Fatalf("a reset over reset_per_account changed the database:\n before %+v\n after  %+v", before, after)
		}
		for i := range 2 {
			abWantSame(t, fmt.Sprintf("unknown address, reset %d", i), reset(email(2)), first)
		}
		if n := e.mailer.Sent(email(2)); n != 0 {
			t.Fatalf("%d mails to an address without an account", n)
		}
		// The budget comes back: one an hour.
		e.clock.Advance(time.Hour)
		abWantSame(t, "reset an hour later", reset(email(1)), first)
		if n := e.mailer.Sent(email(1)); n != 2 {
			t.Fatalf("an hour later: %d mails, want 2", n)
		}
	})
}

// TestResetCooldownAndLiveTokens: with the rate limits off, an account gets
// at most one reset token per reset.cooldown and has at most 3 live ones;
// every answer is the same 202 as for an unknown address, made or not.
func TestResetCooldownAndLiveTokens(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		uid := e.register(email(1))
		unknown := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(2)}})
		steps := []struct {
			advance time.Duration
			tokens  int64 // reset tokens of the account after the request
		}{
			{0, 1},
			{0, 1},                // within the cooldown
			{59 * time.Second, 1}, // still within it
			{time.Second, 2},      // a minute after the first
			{time.Minute, 3},
			{time.Minute, 3}, // three live tokens already
			{time.Hour, 4},   // all expired (reset.ttl 30m): a new one
		}
		for i, s := range steps {
			e.clock.Advance(s.advance)
			r := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
			abWantSame(t, fmt.Sprintf("step %d: known vs unknown", i), r, unknown)
			if n := e.count(&models.ResetToken{}, "user_id = ?", uid); n != s.tokens {
				t.Fatalf("step %d: %d reset tokens, want %d", i, n, s.tokens)
			}
			if n := e.mailer.Sent(email(1)); int64(n) != s.tokens {
				t.Fatalf("step %d: %d mails, want %d", i, n, s.tokens)
			}
		}
	})
}

// TestBruteForceThrottle: a known and an unknown email, driven in
// lockstep, get identical answers at every step: 401 up to the lock, then
// 429 rate_limited with the same Retry-After, even with the right password
// and without any bcrypt (abBreakHash; the failure count does not move),
// the lock doubling with each further failure. The owner's tokens keep working
// meanwhile. After the lock the right password logs in and the count
// starts over.
func TestBruteForceThrottle(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", abThrottle)
		e.register(email(1))
		known, unknown := email(1), email(2)
		// The account's owner, signed in before the attack.
		owner := abLogin(e, "laptop")
		both := func(what, pw string, status int, retry string) {
			t.Helper()
			k, u := apiLogin(e, known, pw), apiLogin(e, unknown, pw)
			if k.Code != status {
				t.Fatalf("%s: known email %d %s, want %d", what, k.Code, k.Raw, status)
			}
			if got := k.Header.Get("Retry-After"); got != retry {
				t.Fatalf("%s: Retry-After %q, want %q", what, got, retry)
			}
			if status == http.StatusTooManyRequests {
				abWantLimited(t, what, k)
			}
			abWantSame(t, what+": known vs unknown email", k, u)
		}
		// What proves below that a refused login runs no bcrypt: with the
		// stored hash broken, one that did would answer 500.
		restore := abBreakHash(e, known)
		apiWantErr(t, "login with a broken hash", apiLogin(e, known, password), http.StatusInternalServerError, "internal_error")
		restore()
		for i := range 3 {
			both(fmt.Sprintf("failure %d", i+1), "wrong password", http.StatusUnauthorized, "")
		}
		locked := abSnapshot(e)
		if locked.Throttles != 2 || locked.Failures != 6 {
			t.Fatalf("after 3 failures of two emails: %d rows, %d failures; want 2 and 6", locked.Throttles, locked.Failures)
		}
		restore = abBreakHash(e, known)
		both("right password while locked", password, http.StatusTooManyRequests, "30")
		both("wrong password while locked", "wrong password", http.StatusTooManyRequests, "30")
		restore()
		after := abSnapshot(e)
		if after.Failures != locked.Failures || after.LockedUntil != locked.LockedUntil || after.RefreshTokens != locked.RefreshTokens {
			t.Fatalf("refused logins changed the count or logged in: before %+v, after %+v", locked, after)
		}
		// The trade-off: an attacker can delay the owner's password
		// logins, never the owner's tokens.
		e.wantVerify("the owner's access token while locked", owner.access, http.StatusOK)
		e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": owner.refresh}})
		e.clock.Advance(29 * time.Second)
		both("a second before the end of the lock", password, http.StatusTooManyRequests, "1")
		e.clock.Advance(time.Second)
		both("fourth failure", "wrong password", http.StatusUnauthorized, "")
		both("after the fourth failure", password, http.StatusTooManyRequests, "60")
		e.clock.Advance(time.Minute)
		apiWantLogin(e, "right password after the lock", known, password)
		if n := e.count(&models.LoginThrottle{}, "1 = 1"); n != 1 {
			t.Fatalf("%d throttle rows after the known email's success, want 1 (the unknown one)", n)
		}
		// The count started over: without that, this failure (the fifth)
		// would lock the email for two minutes.
		apiWantNoLogin(e, "first failure after the success", known, "wrong password")
		apiWantLogin(e, "right password after one new failure", known, password)
		// The unknown email is still counting: its fifth failure locks it.
		apiWantNoLogin(e, "unknown email, fifth failure", unknown, "wrong password")
		abWantLimited(t, "unknown email after its fifth failure", apiLogin(e, unknown, password))
	})
}

// TestThrottleSurvivesRestart: the failure count lives in the database, so
// a server started on it after the lock (a restart, or another instance)
// refuses the locked email; a success there starts the count over for
// every instance.
func TestThrottleSurvivesRestart(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", abThrottle)
		e.register(email(1))
		for i := range 3 {
			apiWantNoLogin(e, fmt.Sprintf("failure %d", i+1), email(1), "wrong password")
		}
		restarted := e.abInstance(nil)
		if got := abWantLimited(t, "right password after the restart", apiLogin(restarted, email(1), password)); got != 30 {
			t.Fatalf("Retry-After %d after the restart, want 30", got)
		}
		restarted.clock.Advance(30 * time.Second)
		apiWantLogin(restarted, "right password after the lock, restarted server", email(1), password)
		// Without the reset, this would be the fourth failure and lock.
		apiWantNoLogin(e, "failure on the first server", email(1), "wrong password")
		apiWantLogin(e, "login on the first server", email(1), password)
	})
}

// TestThrottleCountsAccountPasswordChecks: a wrong current password on PUT
// /me/password and a wrong password on DELETE /me count for the account
// like failed logins; once locked, the right password is refused there too,
// without bcrypt (abBreakHash), and nothing changes.
func TestThrottleCountsAccountPasswordChecks(t *testing.T) {
	change := func(token, current string) req {
		return req{method: "PUT", path: "/api/v1/me/password", token: token,
			body: map[string]string{"current_password": current, "new_password": "another password"}}
	}
	del := func(token, pw string) req {
		return req{method: "DELETE", path: "/api/v1/me", token: token, body: map[string]string{"password": pw}}
	}
	login := func(_, pw string) req {
		return req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": pw}}
	}
	cases := []struct {
		name     string
		failures []func(token, pw string) req
	}{
		{"PUT /me/password", []func(string, string) req{change, change, change}},
		{"DELETE /me", []func(string, string) req{del, del, del}},
		{"login, PUT /me/password and DELETE /me together", []func(string, string) req{login, change, del}},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				// stateless: its tokens do not depend on the password
				// hash, which abBreakHash breaks.
				e := newEnv(t, driver, "stateless", abThrottle).apiBind(t)
				e.register(email(1))
				s := e.login(email(1), "laptop")
				for _, f := range c.failures {
					r := f(s.access, "wrong password")
					apiWantErr(t, fmt.Sprintf("%s %s with a wrong password", r.method, r.path), e.send(r), http.StatusUnauthorized, "invalid_credentials")
				}
				before := abSnapshot(e)
				restore := abBreakHash(e, email(1))
				for _, f := range []func(string, string) req{login, change, del} {
					r := f(s.access, password)
					abWantLimited(t, fmt.Sprintf("%s %s with the right password once locked", r.method, r.path), e.send(r))
				}
				restore()
				after := abSnapshot(e)
				// Throttled attempts are audited; nothing else moves.
				before.AuditEvents, after.AuditEvents = 0, 0
				if after != before {
					t.Fatalf("throttled password checks changed the database:\n before %+v\n after  %+v", before, after)
				}
				e.wantVerify("the caller's token after throttled checks", s.access, http.StatusOK)
				e.clock.Advance(30 * time.Second)
				apiWantLogin(e, "the unchanged password after the lock", email(1), password)
			})
		}
	})
}

// abLogBuffer collects log output for a test to read.
type abLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *abLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *abLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRateLimitSharedRedis: two servers on one Redis share one budget per
// client; with Redis killed each falls back to its own in-memory budget
// (neither lets everything through nor refuses everything) and logs it;
// once Redis answers again they share again.
func TestRateLimitSharedRedis(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		e := newEnv(t, driver, "password_key", func(c *config.Config) {
			c.Redis.URL = rs.URL()
			c.RateLimit.LoginPerIP = "4/1h"
		})
		e.register(email(1))
		var logs abLogBuffer
		a := e.abInstance(slog.New(slog.NewTextHandler(&logs, nil)))
		b := e.abInstance(nil)
		login := func(s *env, what string, want int) {
			t.Helper()
			r := apiLogin(s, email(1), password)
			if want == http.StatusTooManyRequests {
				abWantLimited(t, what, r)
			} else if r.Code != want {
				t.Fatalf("%s: %d %s, want %d", what, r.Code, r.Raw, want)
			}
		}
		shared := func(phase string) {
			t.Helper()
			login(a, phase+": first login on A", http.StatusOK)
			login(b, phase+": first login on B", http.StatusOK)
			login(a, phase+": second login on A", http.StatusOK)
			login(b, phase+": second login on B", http.StatusOK)
			login(a, phase+": fifth login of the client, on A", http.StatusTooManyRequests)
			login(b, phase+": fifth login of the client, on B", http.StatusTooManyRequests)
		}
		shared("Redis up")

		rs.Kill()
		for _, s := range []struct {
			name string
			e    *env
		}{{"A", a}, {"B", b}} {
			for i := range 4 {
				login(s.e, fmt.Sprintf("Redis down: login %d on %s, from its own budget", i+1, s.name), http.StatusOK)
			}
			login(s.e, "Redis down: fifth login on "+s.name, http.StatusTooManyRequests)
		}
		if !strings.Contains(logs.String(), "Redis is not answering") {
			t.Fatalf("no log line about the fallback; logs:\n%s", logs.String())
		}

		rs.Restart()
		// While Redis failed, each limiter tries it again once per probe
		// interval (2s, on the test clock).
		e.clock.Advance(3 * time.Second)
		shared("Redis back")
		if !strings.Contains(logs.String(), "Redis answers again") {
			t.Fatalf("no log line about the recovery; logs:\n%s", logs.String())
		}
	})
}

// abSlowCost is the bcrypt cost of TestHashingBound: slow enough that a
// compare holds the one hashing slot far longer than the queue timeout.
const abSlowCost = 10

// TestHashingBound: with one hashing slot and a queue timeout of 1ms,
// concurrent logins that find the slot taken answer 503
// service_unavailable with Retry-After (and count as no failure), while
// verification and refresh, which hash nothing, keep answering 200.
func TestHashingBound(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) {
			c.Password.BcryptCost = abSlowCost
			c.Password.MaxConcurrentHashes = 1
			c.Password.HashQueueTimeout = time.Millisecond
			abThrottle(c)
		})
		e.register(email(1))
		s := abLogin(e, "laptop")
		const logins = 6
		shed, ok, checks := 0, 0, 0
		// A round is logins released at once. The first to take the slot
		// holds it for a bcrypt of cost 10; the others wait 1ms. Rounds
		// repeat (a few at most) until one of them was shed.
		for round := 0; round < 5 && shed == 0; round++ {
			answers := make([]*resp, logins)
			stop := make(chan struct{})
			var side []*resp
			var wg sync.WaitGroup
			wg.Go(func() {
				refresh := s.refresh
				for {
					v := e.send(req{method: "GET", path: "/api/v1/auth/verify", token: s.access})
					r := e.send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": refresh}})
					side = append(side, v, r)
					if next := r.str("refresh_token"); next != "" {
						refresh = next
					}
					select {
					case <-stop:
						s.refresh = refresh
						return
					default:
					}
				}
			})
			together(logins, func(i int) {
				answers[i] = e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}})
			})
			close(stop)
			wg.Wait()
			for i, r := range answers {
				switch r.Code {
				case http.StatusOK:
					ok++
				case http.StatusServiceUnavailable:
					shed++
					apiWantErr(t, fmt.Sprintf("round %d, login %d", round, i), r, http.StatusServiceUnavailable, "service_unavailable")
					if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
						t.Fatalf("503 with Retry-After %q, want whole seconds, at least 1", r.Header.Get("Retry-After"))
					}
				default:
					t.Fatalf("round %d, login %d: %d %s, want 200 or 503", round, i, r.Code, r.Raw)
				}
			}
			for _, r := range side {
				if r.Code != http.StatusOK {
					t.Fatalf("verify or refresh while logins hashed: %d %s, want 200", r.Code, r.Raw)
				}
			}
			checks += len(side)
		}
		if shed == 0 || ok == 0 {
			t.Fatalf("%d logins succeeded and %d were shed, want some of each", ok, shed)
		}
		if checks == 0 {
			t.Fatal("no verification or refresh ran")
		}
		// A shed login is no failed login.
		if n := e.count(&models.LoginThrottle{}, "1 = 1"); n != 0 {
			t.Fatalf("%d throttle rows after shed logins, want 0", n)
		}
		t.Logf("%d logins succeeded, %d were shed; %d verifications and refreshes answered 200", ok, shed, checks)
	})
}

// abLogins is the number of consecutive logins of TestThousandLogins.
const abLogins = 1000

// abRaceRuns is, per driver, the one strategy whose 1,000 logins run under
// -race: the race detector makes each login about ten times slower (bcrypt
// and the pure-Go SQLite are instrumented), and the two device-ceiling
// strategies between them cover what eviction adds. Without -race every
// strategy runs on every driver.
var abRaceRuns = map[string]string{"sqlite": "multi_device", "mysql": "session_table", "postgres": "session_table"}

// TestThousandLogins: with the default configuration (but bcrypt cost 4
// and the rate limits off), 1,000 consecutive logins of one user, one
// second apart and never logged out, all succeed under every strategy, and
// what happens to the older logins is what docs/abuse.md says:
//
//   - multi_device, session_table: at most strategy.MaxDevices (100) live
//     logins; each login beyond it signs out the least recently seen one
//     (tokens and refresh token). A device in use stays.
//   - single_device: only the newest login lives.
//   - stateless, password_key, valid_date, token_version: nothing per login
//     is checked, so every login's refresh token lives until it expires
//     (jwt.refresh_ttl) or logout-all, and access tokens until they expire.
//
// One device (the first login) is used once a minute throughout and
// refreshed every 10 minutes, so that "least recently seen" and "oldest"
// differ. The newest token verifies at the end.
func TestThousandLogins(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		for _, name := range strategy.Names() {
			t.Run(driver+"/"+name, func(t *testing.T) {
				if raceEnabled && abRaceRuns[driver] != name {
					t.Skipf("under -race the 1,000 logins run for %s on %s only; without -race for every strategy", abRaceRuns[driver], driver)
				}
				t.Parallel() // sequential logins wait on the database: the drivers overlap
				abThousandLogins(t, driver, name)
			})
		}
	}
}

func abThousandLogins(t *testing.T, driver, name string) {
	e := newEnv(t, driver, name)
	e.register(email(1))
	caps := scReportedCaps(e)
	start := time.Now()
	kept := abLogin(e, "kept")
	keptID := ccSID(t, kept.access)
	ids := make([]string, abLogins)
	logins := make([]session, abLogins)
	ids[0], logins[0] = keptID, kept
	for i := 1; i < abLogins; i++ {
		e.clock.Advance(time.Second)
		if i%60 == 0 && name != "single_device" {
			// The kept device is in use: seen at least once a minute.
			if i%600 == 0 {
				r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": kept.refresh}})
				kept = session{access: r.str("access_token"), refresh: r.str("refresh_token")}
			}
			e.wantVerify(fmt.Sprintf("kept device at login %d", i), kept.access, http.StatusOK)
		}
		r := e.send(req{method: "POST", path: "/api/v1/auth/login",
			body: map[string]string{"email": email(1), "password": password, "device_name": fmt.Sprintf("script run %d", i)}})
		if r.Code != http.StatusOK {
			t.Fatalf("login %d of %d: %d %s", i+1, abLogins, r.Code, r.Raw)
		}
		logins[i] = session{access: r.str("access_token"), refresh: r.str("refresh_token")}
		ids[i] = ccSID(t, logins[i].access)
	}
	t.Logf("%d logins in %s", abLogins, time.Since(start).Round(time.Millisecond))
	newest := logins[abLogins-1]
	e.wantVerify("the newest token", newest.access, http.StatusOK)
	live := func() int64 { return e.count(&models.RefreshToken{}, "revoked_at IS NULL AND used_at IS NULL") }

	switch {
	case caps.DeviceLimit:
		// The kept device and the 99 most recent logins.
		first := abLogins - strategy.MaxDevices + 1
		scWantDeviceIDs(t, e, "after 1,000 logins", newest.access, append([]string{keptID}, ids[first:]...)...)
		e.wantVerify("the kept device", kept.access, http.StatusOK)
		e.wantVerify("the oldest login still listed", logins[first].access, http.StatusOK)
		// The last login signed out the least recently seen device: the
		// one that logged in 99 seconds before it (its access token has
		// not expired).
		scWantError(t, "the login the last one evicted", scVerify(e, logins[first-1].access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "the evicted login's refresh", apiRefresh(e, logins[first-1].refresh), http.StatusUnauthorized, "token_revoked")
		if n := live(); n != strategy.MaxDevices {
			t.Fatalf("%d live refresh tokens, want %d", n, strategy.MaxDevices)
		}
	case caps.ListDevices:
		// single_device: each login replaced the one before.
		scWantDeviceIDs(t, e, "after 1,000 logins", newest.access, ids[abLogins-1])
		scWantError(t, "the previous login", scVerify(e, logins[abLogins-2].access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "the first login's refresh", apiRefresh(e, kept.refresh), http.StatusUnauthorized, "token_revoked")
		if n := live(); n != 1 {
			t.Fatalf("%d live refresh tokens, want 1", n)
		}
	default:
		// Nothing per login: every refresh token lives on, the first
		// login's too, and recent access tokens verify.
		e.wantVerify("the previous login", logins[abLogins-2].access, http.StatusOK)
		e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": kept.refresh}})
		e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": logins[1].refresh}})
		if n := live(); n != abLogins {
			t.Fatalf("%d live refresh tokens, want %d", n, abLogins)
		}
	}
}

// TestDeviceLimitKeepsItsMeaning: below the built-in ceiling a configured
// devices.max keeps its meaning: reject refuses every login beyond it with
// 403 device_limit and changes nothing; evict_oldest signs out the least
// recently seen device (not the oldest one, if that one is in use).
func TestDeviceLimitKeepsItsMeaning(t *testing.T) {
	const limit = 5
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"multi_device", "session_table"} {
			for _, policy := range []string{"reject", "evict_oldest"} {
				t.Run(name+"/"+policy, func(t *testing.T) {
					e := newEnv(t, driver, name, func(c *config.Config) {
						c.Devices.Max = limit
						c.Devices.OnLimit = policy
					}).apiBind(t)
					e.register(email(1))
					var logins []session
					for i := range limit {
						logins = append(logins, e.login(email(1), fmt.Sprintf("device %d", i)))
						e.clock.Advance(time.Second)
					}
					// The first device is in use.
					e.clock.Advance(time.Minute)
					e.wantVerify("the first device, in use", logins[0].access, http.StatusOK)
					var ids []string
					for _, s := range logins {
						ids = append(ids, s.loginID)
					}
					for i := range 3 {
						// What the verification above noted of
						// last_seen_at is written first: the login
						// would write it anyway.
						e.tokens.FlushTouches(context.Background())
						before := abSnapshot(e)
						r := e.send(req{method: "POST", path: "/api/v1/auth/login",
							body: map[string]string{"email": email(1), "password": password, "device_name": "one more"}})
						switch policy {
						case "reject":
							scWantError(t, fmt.Sprintf("login %d beyond devices.max", i+1), r, http.StatusForbidden, "device_limit")
							if after := abSnapshot(e); after != before {
								t.Fatalf("a refused login changed the rows: %v -> %v", before, after)
							}
						case "evict_oldest":
							if r.Code != http.StatusOK {
								t.Fatalf("login %d beyond devices.max: %d %s", i+1, r.Code, r.Raw)
							}
							s := e.sessionOf(r)
							// The least recently seen: logins[1], [2], [3] in turn.
							evicted := logins[i+1]
							scWantError(t, "the least recently seen device", scVerify(e, evicted.access), http.StatusUnauthorized, "token_revoked")
							ids = append(slices.DeleteFunc(ids, func(id string) bool { return id == evicted.loginID }), s.loginID)
						}
						e.clock.Advance(time.Second)
					}
					scWantDeviceIDs(t, e, "after the logins beyond devices.max", logins[0].access, ids...)
					e.wantVerify("the first device", logins[0].access, http.StatusOK)
				})
			}
		}
	})
}

// TestRateLimitMounted: mounted into an application's own gin engine, the
// API takes the client IP as server.trusted_proxies says, not as the
// application's engine does: gin trusts every proxy unless told otherwise,
// so an engine left at its defaults would let a client name any address in
// X-Forwarded-For, escape every per-IP limit and write that address into
// its device list and the audit trail.
func TestRateLimitMounted(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "multi_device", func(c *config.Config) { c.RateLimit.LoginPerIP = abRuleBudget })
		app := gin.New()
		e.srv.Mount(app.Group("/api/v1"))
		e.handler = app
		e.register(email(1))
		var s session
		for i := range 3 {
			r := e.send(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i+1)},
				body: map[string]string{"email": email(1), "password": password}})
			if i < 2 {
				if r.Code != http.StatusOK {
					t.Fatalf("login %d: %d %s", i+1, r.Code, r.Raw)
				}
				s = session{access: r.str("access_token")}
				continue
			}
			abWantLimited(t, "third login of one peer, rotating X-Forwarded-For", r)
		}
		var list struct {
			Sessions []struct {
				ID string `json:"id"`
				IP string `json:"ip"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(e.do(http.StatusOK, req{method: "GET", path: "/api/v1/sessions", token: s.access}).Raw, &list); err != nil {
			t.Fatal(err)
		}
		for _, d := range list.Sessions {
			if d.IP != "192.0.2.10" {
				t.Fatalf("device %s has IP %q, want the peer's 192.0.2.10", d.ID, d.IP)
			}
		}
		var ips []string
		if err := e.db.Model(&models.AuditEvent{}).Where("action = ?", "login").Distinct().Pluck("ip", &ips).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ips, []string{"192.0.2.10"}) {
			t.Fatalf("login audit events have IPs %v, want just the peer's", ips)
		}
	})
}
