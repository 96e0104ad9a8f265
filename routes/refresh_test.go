package routes_test

// HTTP-level tests of refresh tokens (issue "Refresh tokens: short access
// tokens, rotating refresh tokens with reuse detection, httpOnly cookie"),
// under every strategy on every test database: the cookie, rotation,
// hashed storage, the absolute lifetime fixed at login, reuse detection and
// its grace window, concurrent refreshes, every way a login ends, the CSRF
// check of the cookie path, malformed requests and pruning.
//
// Every package-level name here starts with rt, so that it cannot collide
// with the helpers of the other test files of the package.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

const (
	rtPath       = "/api/v1/auth/refresh"
	rtCookiePath = "/api/v1/auth"
	// rtFamilyTTL is the documented default of jwt.refresh_ttl: the
	// absolute lifetime of a login's refresh family.
	rtFamilyTTL = 720 * time.Hour
	// rtGrace is the documented default of jwt.refresh_reuse_grace.
	rtGrace       = 10 * time.Second
	rtNewPassword = "refresh test new passphrase"
	// rtConcurrent is how many refreshes of one token race each other.
	rtConcurrent = 50
)

// rtSignsOutDevice are the strategies whose reuse detection ends the
// device's access tokens too; under the others only the refresh family
// dies and the access tokens live until they expire (the limitation).
var rtSignsOutDevice = map[string]bool{"single_device": true, "multi_device": true, "session_table": true}

// rtForT is e reporting to t: the subtests of one server share its
// database but must fail their own test, not the parent's.
func rtForT(e *env, t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// rtRotate refreshes raw and fails unless it answers 200 with an access
// token that verifies and a new refresh token, also set as the cookie with
// Max-Age remaining.
func rtRotate(e *env, what, raw string, remaining time.Duration) session {
	e.t.Helper()
	r := apiRefresh(e, raw)
	if r.Code != http.StatusOK {
		e.t.Fatalf("%s: refresh answered %d, want 200; body %s", what, r.Code, r.Raw)
	}
	s := e.sessionOf(r)
	if s.refresh == raw {
		e.t.Fatalf("%s: refresh returned the presented refresh token again", what)
	}
	rtWantCookie(e, what, r, s.refresh, remaining)
	return s
}

// rtDenied fails unless refreshing raw (in the body) answers 401 with
// code, and leaves the cookie alone: a token in the body says nothing
// about the browser's cookie (a forged request must not clear it).
func rtDenied(e *env, what, raw, code string) {
	e.t.Helper()
	r := apiRefresh(e, raw)
	if r.Code != http.StatusUnauthorized || r.errCode() != code {
		e.t.Fatalf("%s: refresh answered %d %q, want 401 %q; body %s", what, r.Code, r.errCode(), code, r.Raw)
	}
	rtWantUntouched(e, what, r)
}

// rtWantUntouched fails if r sets the refresh_token cookie at all.
func rtWantUntouched(e *env, what string, r *resp) {
	e.t.Helper()
	if c := r.cookie("refresh_token"); c != nil {
		e.t.Fatalf("%s: the refresh_token cookie was set (%q); a refresh that did not read it must leave it", what, c.String())
	}
}

// rtWantCookie fails unless r sets the refresh_token cookie to value with
// the attributes the issue requires and Max-Age remaining, and its body
// carries the same token and lifetime.
func rtWantCookie(e *env, what string, r *resp, value string, remaining time.Duration) {
	e.t.Helper()
	c := r.cookie("refresh_token")
	if c == nil {
		e.t.Fatalf("%s: no refresh_token cookie; Set-Cookie %q", what, r.Header.Values("Set-Cookie"))
	}
	secs := int(remaining / time.Second)
	if c.Value != value || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != rtCookiePath ||
		c.Secure != e.cfg.Cookies.Secure || c.MaxAge != secs {
		e.t.Fatalf("%s: cookie %q, want value %q HttpOnly SameSite=Strict Path=%s Secure=%v Max-Age=%d",
			what, c.String(), value, rtCookiePath, e.cfg.Cookies.Secure, secs)
	}
	if got := r.str("refresh_token"); got != value {
		e.t.Fatalf("%s: body refresh_token %q, cookie %q", what, got, value)
	}
	if got, _ := r.Body["refresh_expires_in"].(float64); int(got) != secs {
		e.t.Fatalf("%s: refresh_expires_in %v, want %d", what, r.Body["refresh_expires_in"], secs)
	}
}

// rtCookieOnly fails unless r sets the refresh cookie (as rtWantCookie
// checks it) and its JSON carries no refresh_token; it returns the tokens.
func rtCookieOnly(e *env, what string, r *resp, remaining time.Duration) session {
	e.t.Helper()
	if v, ok := r.Body["refresh_token"]; ok {
		e.t.Fatalf("%s: the JSON carries refresh_token %v; a cookie answer must not", what, v)
	}
	c := r.cookie("refresh_token")
	if c == nil || c.Value == "" {
		e.t.Fatalf("%s: no refresh_token cookie; Set-Cookie %q", what, r.Header.Values("Set-Cookie"))
	}
	r.Body["refresh_token"] = c.Value // as rtWantCookie expects it
	rtWantCookie(e, what, r, c.Value, remaining)
	return e.sessionOf(r)
}

// rtWantCleared fails unless r expires the refresh_token cookie.
func rtWantCleared(e *env, what string, r *resp) {
	e.t.Helper()
	c := r.cookie("refresh_token")
	if c == nil || c.Value != "" || c.MaxAge >= 0 || c.Path != rtCookiePath || !c.HttpOnly {
		e.t.Fatalf("%s: want the refresh_token cookie cleared (empty, Max-Age<=0, Path=%s); Set-Cookie %q",
			what, rtCookiePath, r.Header.Values("Set-Cookie"))
	}
}

// rtFamily counts the refresh rows of a login, matching the extra
// condition if any.
func rtFamily(e *env, loginID, cond string) int64 {
	e.t.Helper()
	where := "family_id = ?"
	if cond != "" {
		where += " AND " + cond
	}
	return e.count(&models.RefreshToken{}, where, loginID)
}

// rtStored counts the rows holding the refresh token raw.
func rtStored(e *env, raw string) int64 {
	e.t.Helper()
	return e.count(&models.RefreshToken{}, "token_hash = ?", strategy.HashSecret(raw))
}

func TestRefreshTokenOnLoginAndPasswordChange(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		if e.cfg.JWT.RefreshTTL != rtFamilyTTL || !e.cfg.Cookies.Secure {
			t.Fatalf("harness config changed: refresh_ttl %s, cookies.secure %v", e.cfg.JWT.RefreshTTL, e.cfg.Cookies.Secure)
		}
		e.register(email(1))
		r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login",
			body: map[string]string{"email": email(1), "password": password, "device_name": "phone"}})
		s := e.sessionOf(r)
		rtWantCookie(e, "login", r, s.refresh, rtFamilyTTL)
		if got, _ := r.Body["expires_in"].(float64); time.Duration(got)*time.Second != e.cfg.JWT.AccessTTL {
			t.Fatalf("login: expires_in %v, want %s", r.Body["expires_in"], e.cfg.JWT.AccessTTL)
		}
		if r.str("token_type") != "Bearer" {
			t.Fatalf("login: token_type %q, want Bearer", r.str("token_type"))
		}

		r = e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: s.access,
			body: map[string]string{"current_password": password, "new_password": rtNewPassword}})
		changed := e.sessionOf(r)
		if changed.refresh == s.refresh {
			t.Fatal("password change: returned the old refresh token")
		}
		rtWantCookie(e, "password change", r, changed.refresh, rtFamilyTTL)
		rtRotate(e, "refresh after password change", changed.refresh, rtFamilyTTL)

		e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
		token := e.mailer.Last(email(1))
		if token == "" {
			t.Fatal("password reset: no token was mailed")
		}
		r = e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body: map[string]string{"token": token, "new_password": password}})
		if len(r.Raw) != 0 {
			t.Fatalf("password reset confirm: body %q, want none", r.Raw)
		}
		if c := r.cookie("refresh_token"); c != nil && c.Value != "" {
			t.Fatalf("password reset confirm: sets a refresh cookie %q; it must hand out no tokens", c.String())
		}
	})
}

// TestRefreshCookieNotSecure: cookies.secure false (plain-HTTP development)
// drops the Secure attribute from every refresh cookie, and only it.
func TestRefreshCookieNotSecure(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) { c.Cookies.Secure = false })
		e.register(email(1))
		r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login",
			body: map[string]string{"email": email(1), "password": password}})
		s := e.sessionOf(r)
		rtWantCookie(e, "login", r, s.refresh, rtFamilyTTL)
		s = rtRotate(e, "refresh", s.refresh, rtFamilyTTL)
		r = e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: s.access,
			body: map[string]string{"current_password": password, "new_password": rtNewPassword}})
		rtWantCookie(e, "password change", r, r.str("refresh_token"), rtFamilyTTL)
	})
}

func TestRefreshRotation(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		s1 := e.login(email(1), "phone")
		s2 := rtRotate(e, "first refresh", s1.refresh, rtFamilyTTL)
		if s2.access == s1.access {
			t.Fatal("refresh returned the old access token")
		}
		if s2.loginID != s1.loginID {
			t.Fatalf("refresh moved the login from %q to %q: a refresh continues its login", s1.loginID, s2.loginID)
		}
		s3 := rtRotate(e, "second refresh", s2.refresh, rtFamilyTTL)
		if s3.refresh == s1.refresh {
			t.Fatal("second refresh returned the first refresh token")
		}
		if n := rtFamily(e, s1.loginID, ""); n != 3 {
			t.Fatalf("%d refresh rows in the family, want 3 (login + two rotations)", n)
		}
		if n := rtFamily(e, s1.loginID, "used_at IS NOT NULL"); n != 2 {
			t.Fatalf("%d consumed rows in the family, want 2", n)
		}

		// Only the SHA-256 is stored: each token has its hash row, and no
		// column of any row holds a raw token.
		raws := []string{s1.refresh, s2.refresh, s3.refresh}
		for _, raw := range raws {
			if n := rtStored(e, raw); n != 1 {
				t.Fatalf("%d rows with the SHA-256 of a refresh token, want 1", n)
			}
		}
		var rows []map[string]any
		if err := e.db.Table("refresh_tokens").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("%d rows in refresh_tokens, want 3", len(rows))
		}
		for _, row := range rows {
			for col, v := range row {
				var text []byte
				switch v := v.(type) {
				case []byte:
					text = v
				case string:
					text = []byte(v)
				default:
					text = fmt.Append(nil, v)
				}
				for _, raw := range raws {
					if bytes.Contains(text, []byte(raw)) {
						t.Fatalf("column %s of refresh_tokens holds a raw refresh token", col)
					}
				}
			}
		}
	})
}

// TestRefreshAbsoluteLifetime: rotation never extends a login; the family
// ends 720h after the login however often it is refreshed.
func TestRefreshAbsoluteLifetime(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		s := e.login(email(1), "phone")
		e.clock.Advance(700 * time.Hour)
		s2 := rtRotate(e, "refresh at 700h", s.refresh, 20*time.Hour)
		e.clock.Advance(19 * time.Hour)
		s3 := rtRotate(e, "refresh at 719h", s2.refresh, time.Hour)
		e.clock.Advance(time.Hour)
		rtDenied(e, "refresh at 720h", s3.refresh, "token_expired")
	})
}

func TestRefreshReuseDetection(t *testing.T) {
	t.Parallel()
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		e.register(email(2))
		// Bystanders the reuse must not touch: the same user's other device
		// (single_device has none: a second login replaces the first) and
		// another user.
		var laptop *session
		if name != "single_device" {
			l := e.login(email(1), "laptop")
			laptop = &l
		}
		stranger := e.login(email(2), "phone")
		s1 := e.login(email(1), "phone")
		s2 := rtRotate(e, "R1 -> R2", s1.refresh, rtFamilyTTL)
		s3 := rtRotate(e, "R2 -> R3", s2.refresh, rtFamilyTTL)

		e.clock.Advance(e.cfg.JWT.RefreshReuseGrace + time.Second)
		rtDenied(e, "R1 again after the grace", s1.refresh, "refresh_token_reused")
		rtDenied(e, "R2 after reuse", s2.refresh, "token_revoked")
		rtDenied(e, "R3 after reuse", s3.refresh, "token_revoked")
		rtDenied(e, "R1 once more", s1.refresh, "token_revoked")
		if n := rtFamily(e, s1.loginID, "revoked_at IS NULL"); n != 0 {
			t.Fatalf("%d refresh rows of the family still unrevoked after reuse", n)
		}

		want, how := http.StatusOK, "lives on (the limitation: only the refresh family can die)"
		if rtSignsOutDevice[name] {
			want, how = http.StatusUnauthorized, "is signed out"
		}
		for i, a := range []string{s1.access, s2.access, s3.access} {
			e.wantVerify(fmt.Sprintf("access token %d of the family after reuse, which %s", i+1, how), a, want)
		}

		if laptop != nil {
			e.wantVerify("the same user's other device", laptop.access, http.StatusOK)
			rtRotate(e, "the same user's other device", laptop.refresh, rtFamilyTTL-e.cfg.JWT.RefreshReuseGrace-time.Second)
			if e.caps().ListDevices {
				r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/sessions", token: laptop.access})
				if bytes.Contains(r.Raw, []byte(s1.loginID)) {
					t.Fatalf("the device whose refresh token was reused is still listed: %s", r.Raw)
				}
			}
		}
		e.wantVerify("another user", stranger.access, http.StatusOK)
		rtRotate(e, "another user", stranger.refresh, rtFamilyTTL-e.cfg.JWT.RefreshReuseGrace-time.Second)
	})
}

// TestRefreshGraceWindow: a client that lost the answer to its refresh
// (a network error, two tabs) and retries within the grace gets the same
// successor; after the grace the same presentation is reuse.
func TestRefreshGraceWindow(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		grace := e.cfg.JWT.RefreshReuseGrace
		if grace != rtGrace {
			t.Fatalf("jwt.refresh_reuse_grace defaults to %s, want %s", grace, rtGrace)
		}
		e.register(email(1))
		s1 := e.login(email(1), "phone")
		s2 := rtRotate(e, "R1 -> R2", s1.refresh, rtFamilyTTL)

		e.clock.Advance(5 * time.Second)
		r := e.do(http.StatusOK, req{method: "POST", path: rtPath, body: map[string]string{"refresh_token": s1.refresh}})
		again := e.sessionOf(r)
		if again.refresh != s2.refresh {
			t.Fatal("R1 within the grace: a different refresh token than R2")
		}
		rtWantCookie(e, "R1 within the grace", r, s2.refresh, rtFamilyTTL-5*time.Second)
		if again.loginID != s1.loginID {
			t.Fatalf("R1 within the grace: login %q, want %q", again.loginID, s1.loginID)
		}
		if n := rtFamily(e, s1.loginID, ""); n != 2 {
			t.Fatalf("R1 within the grace: %d rows in the family, want 2 (no new link)", n)
		}
		if n := rtFamily(e, s1.loginID, "used_at IS NULL"); n != 1 {
			t.Fatalf("R1 within the grace: %d unused rows, want 1 (R2 untouched)", n)
		}
		// R2 was handed out twice but is still one token: it rotates once.
		s3 := rtRotate(e, "R2 -> R3", s2.refresh, rtFamilyTTL-5*time.Second)

		e.clock.Advance(grace - 5*time.Second + time.Second)
		rtDenied(e, "R1 at grace+1s", s1.refresh, "refresh_token_reused")
		rtDenied(e, "R3 after reuse", s3.refresh, "token_revoked")
		rtDenied(e, "R2 after reuse", s2.refresh, "token_revoked")
	})
}

// rtResult is one answer of a concurrent refresh.
type rtResult struct {
	code            int
	errCode         string
	access, refresh string
}

// rtRefreshConcurrently presents raw n times at once. It calls the handler
// directly: the env helpers fail the test, which only the test's own
// goroutine may do.
func rtRefreshConcurrently(e *env, raw string, n int) []rtResult {
	body, err := json.Marshal(map[string]string{"refresh_token": raw})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]rtResult, n)
	together(n, func(i int) {
		hr := httptest.NewRequest("POST", rtPath, bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, hr)
		var b struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			Error        struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &b)
		out[i] = rtResult{code: w.Code, errCode: b.Error.Code, access: b.AccessToken, refresh: b.RefreshToken}
	})
	return out
}

// TestRefreshConcurrent: many refreshes of one token at the same instant
// (the clock stands still, so every duplicate is within any grace) must
// never fork the family: one consumed row, one successor row, and every
// answer that succeeds hands out that one successor.
func TestRefreshConcurrent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		zeroGrace bool
	}{
		{"default grace", false},
		// Grace 0 with a still clock: now - used_at == 0 is within a
		// grace of 0, so the code answers every duplicate with the same
		// successor. Either that or reuse would be sound; what must hold
		// is that there is never a second successor.
		{"zero grace", true},
	}
	matrix(t, func(t *testing.T, driver, name string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, driver, name, func(c *config.Config) {
					if tc.zeroGrace {
						c.JWT.RefreshReuseGrace = 0
					}
				})
				e.register(email(1))
				s := e.login(email(1), "phone")
				res := rtRefreshConcurrently(e, s.refresh, rtConcurrent)

				successors := map[string]bool{}
				var accesses []string
				reused := 0
				for _, r := range res {
					switch {
					case r.code == http.StatusOK && r.refresh != "" && r.access != "":
						successors[r.refresh] = true
						accesses = append(accesses, r.access)
					case r.code == http.StatusUnauthorized && r.errCode == "refresh_token_reused":
						reused++
					default:
						t.Fatalf("concurrent refresh answered %d %q", r.code, r.errCode)
					}
				}
				if len(successors) != 1 {
					t.Fatalf("%d distinct successor refresh tokens, want exactly 1", len(successors))
				}
				next := slices.Collect(maps.Keys(successors))[0]
				if next == s.refresh {
					t.Fatal("the successor is the presented token")
				}
				if n := rtFamily(e, s.loginID, ""); n != 2 {
					t.Fatalf("%d rows in the family, want 2: the login's and one successor", n)
				}
				if n := rtFamily(e, s.loginID, "used_at IS NOT NULL"); n != 1 {
					t.Fatalf("%d consumed rows in the family, want 1", n)
				}
				if n := rtStored(e, next); n != 1 {
					t.Fatalf("%d rows hold the successor, want 1", n)
				}
				if !tc.zeroGrace && reused != 0 {
					t.Fatalf("%d of %d refreshes within the grace were taken for reuse", reused, rtConcurrent)
				}
				t.Logf("%d answered with the successor, %d as reuse", len(accesses), reused)

				if reused > 0 {
					// Reuse revoked the family: the one successor dies too.
					rtDenied(e, "the successor after reuse", next, "token_revoked")
					return
				}
				for i, a := range accesses {
					e.wantVerify(fmt.Sprintf("access token %d of the concurrent refreshes", i), a, http.StatusOK)
				}
				after := rtRotate(e, "the successor", next, rtFamilyTTL)
				if tc.zeroGrace {
					// Once the clock moves, grace 0 means any presentation
					// of a consumed token is reuse.
					e.clock.Advance(time.Millisecond)
					rtDenied(e, "R1 1ms later under grace 0", s.refresh, "refresh_token_reused")
					rtDenied(e, "the newest token after reuse", after.refresh, "token_revoked")
				}
			})
		}
	})
}

// TestRefreshAfterRevocation: every way a login ends kills its refresh
// tokens, under every strategy; under stateless they are the only thing
// that can be revoked at all.
func TestRefreshAfterRevocation(t *testing.T) {
	t.Parallel()
	// act ends the login s of user addr (id uid) and returns the code its
	// refresh tokens get afterwards, "" when the strategy does not support
	// the action (nothing may change then), and whether the user's other
	// logins end too.
	type action func(t *testing.T, e *env, addr, uid string, s session, other *session) (code string, othersDie bool)
	cases := []struct {
		name string
		act  action
	}{
		{"logout", func(t *testing.T, e *env, _, _ string, s session, _ *session) (string, bool) {
			r := e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: s.access})
			rtWantCleared(e, "logout", r)
			return "token_revoked", false
		}},
		{"logout-all", func(t *testing.T, e *env, _, _ string, s session, _ *session) (string, bool) {
			r := e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: s.access})
			if e.name == "stateless" {
				if r.Code != http.StatusNotImplemented || r.errCode() != "not_supported" {
					t.Fatalf("logout-all under stateless: %d %q, want 501 not_supported", r.Code, r.errCode())
				}
				return "", false
			}
			if r.Code != http.StatusNoContent {
				t.Fatalf("logout-all: %d, want 204; body %s", r.Code, r.Raw)
			}
			rtWantCleared(e, "logout-all", r)
			return "token_revoked", true
		}},
		{"password change", func(t *testing.T, e *env, _, _ string, s session, _ *session) (string, bool) {
			r := e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: s.access,
				body: map[string]string{"current_password": password, "new_password": rtNewPassword}})
			fresh := e.sessionOf(r)
			rtRotate(e, "the login the password change started", fresh.refresh, rtFamilyTTL)
			return "token_revoked", true
		}},
		{"password reset", func(t *testing.T, e *env, addr, _ string, _ session, _ *session) (string, bool) {
			e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": addr}})
			e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
				body: map[string]string{"token": e.mailer.Last(addr), "new_password": rtNewPassword}})
			return "token_revoked", true
		}},
		{"device revocation", func(t *testing.T, e *env, _, _ string, s session, other *session) (string, bool) {
			// The other device signs this one out; single_device has no
			// other device and revokes its own.
			actor := s
			if other != nil {
				actor = *other
			}
			r := e.send(req{method: "DELETE", path: "/api/v1/sessions/" + s.loginID, token: actor.access})
			if !e.caps().RevokeDevice {
				if r.Code != http.StatusNotImplemented || r.errCode() != "not_supported" {
					t.Fatalf("DELETE /sessions under %s: %d %q, want 501 not_supported", e.name, r.Code, r.errCode())
				}
				return "", false
			}
			if r.Code != http.StatusNoContent {
				t.Fatalf("DELETE /sessions/{id}: %d, want 204; body %s", r.Code, r.Raw)
			}
			return "token_revoked", false
		}},
		{"account deletion", func(t *testing.T, e *env, _, uid string, s session, _ *session) (string, bool) {
			r := e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: s.access,
				body: map[string]string{"password": password}})
			rtWantCleared(e, "account deletion", r)
			if n := e.count(&models.RefreshToken{}, "user_id = ?", uid); n != 0 {
				t.Fatalf("%d refresh rows left of the deleted user", n)
			}
			return "token_invalid", true
		}},
	}
	matrix(t, func(t *testing.T, driver, name string) {
		srv := newEnv(t, driver, name)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := rtForT(srv, t)
				addr := email(i + 1)
				uid := e.register(addr)
				var other *session
				if name != "single_device" {
					o := e.login(addr, "tablet")
					other = &o
				}
				first := e.login(addr, "phone")
				// A consumed token of the family must die as well.
				s := rtRotate(e, "before "+tc.name, first.refresh, rtFamilyTTL)

				code, othersDie := tc.act(t, e, addr, uid, s, other)
				if code == "" {
					// Not supported: the failed request changed nothing.
					rtRotate(e, tc.name+" not supported, the login's refresh", s.refresh, rtFamilyTTL)
					if other != nil {
						rtRotate(e, tc.name+" not supported, the other device's refresh", other.refresh, rtFamilyTTL)
					}
					return
				}
				rtDenied(e, "refresh after "+tc.name, s.refresh, code)
				rtDenied(e, "the consumed refresh token after "+tc.name, first.refresh, code)
				if other == nil {
					return
				}
				if othersDie {
					rtDenied(e, "the other device's refresh after "+tc.name, other.refresh, code)
				} else {
					rtRotate(e, "the other device's refresh after "+tc.name, other.refresh, rtFamilyTTL)
				}
			})
		}
	})
}

// TestRefreshLogoutOthers: where the strategy keeps the caller's login
// (204) its refresh token keeps working; where it can only end every login
// (200 with fresh tokens) every older refresh token dies.
func TestRefreshLogoutOthers(t *testing.T) {
	want := map[string]int{
		"stateless":     http.StatusNotImplemented,
		"password_key":  http.StatusOK,
		"valid_date":    http.StatusOK,
		"token_version": http.StatusOK,
		"single_device": http.StatusNoContent,
		"multi_device":  http.StatusNoContent,
		"session_table": http.StatusNoContent,
	}
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		// Under single_device the second login already replaces the first.
		other := e.login(email(1), "laptop")
		first := e.login(email(1), "phone")
		me := rtRotate(e, "before logout-others", first.refresh, rtFamilyTTL)

		r := e.send(req{method: "POST", path: "/api/v1/auth/logout-others", token: me.access})
		if r.Code != want[name] {
			t.Fatalf("logout-others: %d, want %d; body %s", r.Code, want[name], r.Raw)
		}
		switch r.Code {
		case http.StatusNoContent:
			if c := r.cookie("refresh_token"); c != nil {
				t.Fatalf("logout-others (204) touched the caller's refresh cookie: %q", c.String())
			}
			rtDenied(e, "the other device's refresh", other.refresh, "token_revoked")
			rtRotate(e, "the caller's refresh", me.refresh, rtFamilyTTL)
		case http.StatusOK:
			fresh := e.sessionOf(r)
			rtWantCookie(e, "logout-others (200)", r, fresh.refresh, rtFamilyTTL)
			rtDenied(e, "the other device's refresh", other.refresh, "token_revoked")
			rtDenied(e, "the caller's old refresh", me.refresh, "token_revoked")
			rtDenied(e, "the caller's consumed refresh", first.refresh, "token_revoked")
			rtRotate(e, "the fresh refresh", fresh.refresh, rtFamilyTTL)
		default:
			if r.errCode() != "not_supported" {
				t.Fatalf("logout-others: code %q, want not_supported", r.errCode())
			}
			rtRotate(e, "not supported: the other device's refresh", other.refresh, rtFamilyTTL)
			rtRotate(e, "not supported: the caller's refresh", me.refresh, rtFamilyTTL)
		}
	})
}

// TestRefreshCSRF: a refresh that relies on the cookie alone must prove it
// is not a cross-site form post; a refused one consumes nothing.
func TestRefreshCSRF(t *testing.T) {
	const allowed = "https://app.example.com"
	refused := []struct {
		name   string
		header map[string]string
	}{
		{"no header", nil},
		{"origin not allowed", map[string]string{"Origin": "https://evil.example.com"}},
		{"allowed origin over http", map[string]string{"Origin": "http://app.example.com"}},
		{"null origin", map[string]string{"Origin": "null"}},
	}
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name, func(c *config.Config) { c.Cookies.AllowedOrigins = []string{allowed} })
		e.register(email(1))
		s := e.login(email(1), "browser")
		jar := func(v string) []*http.Cookie { return []*http.Cookie{{Name: "refresh_token", Value: v}} }

		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				e := rtForT(e, t)
				r := e.send(req{method: "POST", path: rtPath, cookies: jar(s.refresh), header: tc.header})
				if r.Code != http.StatusForbidden || r.errCode() != "csrf_check_failed" {
					t.Fatalf("cookie refresh with %v: %d %q, want 403 csrf_check_failed", tc.header, r.Code, r.errCode())
				}
				if n := rtFamily(e, s.loginID, ""); n != 1 {
					t.Fatalf("a refused refresh changed the family: %d rows, want 1", n)
				}
				if n := rtFamily(e, s.loginID, "used_at IS NULL AND revoked_at IS NULL"); n != 1 {
					t.Fatal("a refused refresh consumed or revoked the token")
				}
			})
		}

		// The refused token is intact: with the header it rotates. A
		// refresh that presented the cookie answers the new token in the
		// cookie only (issue 20): script cannot read it from the JSON.
		r := e.do(http.StatusOK, req{method: "POST", path: rtPath, cookies: jar(s.refresh),
			header: map[string]string{"X-Requested-With": "XMLHttpRequest"}})
		s2 := rtCookieOnly(e, "cookie refresh with X-Requested-With", r, rtFamilyTTL)
		if s2.refresh == s.refresh {
			t.Fatal("cookie refresh with X-Requested-With did not rotate")
		}

		r = e.do(http.StatusOK, req{method: "POST", path: rtPath, cookies: jar(s2.refresh),
			header: map[string]string{"Origin": allowed}})
		s3 := rtCookieOnly(e, "cookie refresh from the allowed origin", r, rtFamilyTTL)
		if s3.refresh == s2.refresh {
			t.Fatal("cookie refresh from the allowed origin did not rotate")
		}

		// The body needs no CSRF proof (a cross-site form cannot send
		// JSON with the token it does not know), and wins over the cookie.
		r = e.do(http.StatusOK, req{method: "POST", path: rtPath, cookies: jar("stale-cookie-value"),
			body: map[string]string{"refresh_token": s3.refresh}})
		rtWantCookie(e, "body refresh", r, e.sessionOf(r).refresh, rtFamilyTTL)
	})
}

// TestRefreshBadRequests: a missing token is the client's mistake (400), a
// wrong one is 401; none of them changes anything.
func TestRefreshBadRequests(t *testing.T) {
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no body, no cookie", nil, http.StatusBadRequest, "invalid_request"},
		{"empty object", map[string]string{}, http.StatusBadRequest, "invalid_request"},
		{"empty token", map[string]string{"refresh_token": ""}, http.StatusBadRequest, "invalid_request"},
		{"not JSON", "refresh_token=x", http.StatusBadRequest, "invalid_request"},
		{"unknown field", map[string]string{"token": "x"}, http.StatusBadRequest, "invalid_request"},
		{"wrong type", map[string]int{"refresh_token": 1}, http.StatusBadRequest, "invalid_request"},
		{"garbage", map[string]string{"refresh_token": "garbage"}, http.StatusUnauthorized, "token_invalid"},
		{"well-formed unknown", map[string]string{"refresh_token": strategy.NewSecret(32)}, http.StatusUnauthorized, "token_invalid"},
		{"oversize", map[string]string{"refresh_token": strings.Repeat("a", 129)}, http.StatusUnauthorized, "token_invalid"},
		{"very large", map[string]string{"refresh_token": strings.Repeat("a", 64<<10)}, http.StatusUnauthorized, "token_invalid"},
	}
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		s := e.login(email(1), "phone")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := rtForT(e, t)
				r := e.send(req{method: "POST", path: rtPath, body: tc.body})
				if r.Code != tc.status || r.errCode() != tc.code {
					t.Fatalf("%d %q, want %d %q; body %s", r.Code, r.errCode(), tc.status, tc.code, r.Raw)
				}
				if tc.status == http.StatusUnauthorized {
					rtWantUntouched(e, tc.name, r)
				}
				if n := e.count(&models.RefreshToken{}, "1 = 1"); n != 1 {
					t.Fatalf("%d refresh rows after a failed refresh, want 1", n)
				}
			})
		}
		t.Run("access token as refresh token", func(t *testing.T) {
			e := rtForT(e, t)
			rtDenied(e, "access token", s.access, "token_invalid")
		})
		rtRotate(e, "the real token after the failed requests", s.refresh, rtFamilyTTL)
	})
}

// TestRefreshPrune: the periodic prune deletes refresh rows that can never
// be used again (revoked, or past the family's end) and keeps every live
// one, consumed ones included: reuse detection needs them until the family
// expires.
func TestRefreshPrune(t *testing.T) {
	t.Parallel()
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		e.register(email(2))
		gone := e.login(email(1), "gone")
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: gone.access})
		kept := e.login(email(2), "kept")
		kept2 := rtRotate(e, "kept -> kept2", kept.refresh, rtFamilyTTL)

		rtPrune(e, "after a logout")
		if rtStored(e, gone.refresh) != 0 {
			t.Fatal("prune kept the refresh row of a logged-out login")
		}
		if rtStored(e, kept.refresh) != 1 || rtStored(e, kept2.refresh) != 1 {
			t.Fatal("prune deleted a row of a live family")
		}
		e.clock.Advance(e.cfg.JWT.RefreshReuseGrace + time.Second)
		rtDenied(e, "reuse of the consumed token after prune", kept.refresh, "refresh_token_reused")

		late := e.login(email(1), "late")
		e.clock.Advance(time.Hour)
		latest := e.login(email(2), "latest")
		e.clock.Advance(rtFamilyTTL - time.Hour + time.Second)
		rtPrune(e, "after the first logins expired")
		if rtStored(e, late.refresh) != 0 {
			t.Fatal("prune kept the row of an expired family")
		}
		if rtStored(e, latest.refresh) != 1 {
			t.Fatal("prune deleted the row of a live family")
		}
		rtRotate(e, "the live login after prune", latest.refresh, time.Hour-time.Second)
	})
}

// rtPrune runs the prune job and checks it against the table: no dead row
// survives, every live row does, and the count it reports is what left
// the three tables.
func rtPrune(e *env, what string) {
	e.t.Helper()
	now := e.clock.Now()
	dead := "revoked_at IS NOT NULL OR expires_at < ?"
	all := func() [5]int64 {
		return [5]int64{
			e.count(&models.RefreshToken{}, "1 = 1"),
			e.count(&models.Session{}, "1 = 1"),
			e.count(&models.ResetToken{}, "1 = 1"),
			e.count(&models.Invalidation{}, "1 = 1"),
			e.count(&models.AuditEvent{}, "1 = 1"),
		}
	}
	var liveIDs []uint64
	if err := e.db.Model(&models.RefreshToken{}).Where("revoked_at IS NULL AND expires_at >= ?", now).
		Order("id").Pluck("id", &liveIDs).Error; err != nil {
		e.t.Fatal(err)
	}
	deadBefore := e.count(&models.RefreshToken{}, dead, now)
	if deadBefore == 0 {
		e.t.Fatalf("%s: no dead refresh row to prune; the test sets up nothing", what)
	}
	before := all()
	n, err := e.tokens.Prune(context.Background())
	if err != nil {
		e.t.Fatalf("%s: prune: %v", what, err)
	}
	after := all()
	if d := e.count(&models.RefreshToken{}, dead, now); d != 0 {
		e.t.Fatalf("%s: %d dead refresh rows survive prune", what, d)
	}
	var left []uint64
	if err := e.db.Model(&models.RefreshToken{}).Order("id").Pluck("id", &left).Error; err != nil {
		e.t.Fatal(err)
	}
	if !slices.Equal(left, liveIDs) {
		e.t.Fatalf("%s: refresh rows after prune %v, want the live ones %v", what, left, liveIDs)
	}
	if before[0]-after[0] != deadBefore {
		e.t.Fatalf("%s: prune deleted %d refresh rows, want %d", what, before[0]-after[0], deadBefore)
	}
	deleted := int64(0)
	for i := range before {
		deleted += before[i] - after[i]
	}
	if n != deleted {
		e.t.Fatalf("%s: prune reported %d deleted rows, %d left the tables", what, n, deleted)
	}
}
