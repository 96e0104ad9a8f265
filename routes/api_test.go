package routes_test

// The foundation through the real router: every endpoint's happy path and
// answer shape, and bad input on every endpoint that takes a body, where
// each rejection must leave the database as it was.

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
)

// apiBind returns a copy of e whose helpers report to t, so that a subtest
// never calls FailNow on its parent.
func (e *env) apiBind(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// apiLeaks are fragments of causes (drivers, libraries, Go itself) that
// must never reach a client in an error message.
var apiLeaks = []string{
	"sql", "gorm", "mysql", "sqlite", "database", "jwt", "hkdf", "bcrypt", "crypto",
	"signature", "malformed", "goroutine", "panic", ".go:", "runtime", "Error 1",
}

// apiCheckErrorBody fails unless r's body is exactly
// {"error":{"code","message","request_id"}} with a message that names no
// internals and the request id the X-Request-Id header carries.
func apiCheckErrorBody(t testing.TB, what string, r *resp) {
	t.Helper()
	if got := apiKeys(r.Body); !slices.Equal(got, []string{"error"}) {
		t.Fatalf("%s: error body has keys %v, want [error]: %s", what, got, r.Raw)
	}
	inner, _ := r.Body["error"].(map[string]any)
	if got := apiKeys(inner); !slices.Equal(got, []string{"code", "message", "request_id"}) {
		t.Fatalf("%s: error object has keys %v, want [code message request_id]: %s", what, got, r.Raw)
	}
	if id, _ := inner["request_id"].(string); id == "" || id != r.Header.Get("X-Request-Id") {
		t.Fatalf("%s: error.request_id %q, X-Request-Id %q: want the same non-empty id", what, id, r.Header.Get("X-Request-Id"))
	}
	msg, _ := inner["message"].(string)
	if msg == "" {
		t.Fatalf("%s: empty error message: %s", what, r.Raw)
	}
	for _, leak := range apiLeaks {
		if strings.Contains(strings.ToLower(msg), strings.ToLower(leak)) {
			t.Fatalf("%s: error message leaks %q: %s", what, leak, r.Raw)
		}
	}
}

// apiWantErr fails unless r is the error answer status/code, in the one
// error shape.
func apiWantErr(t testing.TB, what string, r *resp, status int, code string) {
	t.Helper()
	if r.Code != status || r.errCode() != code {
		t.Fatalf("%s: got %d %q, want %d %q: %s", what, r.Code, r.errCode(), status, code, r.Raw)
	}
	apiCheckErrorBody(t, what, r)
}

// apiKeys lists the keys of m, sorted.
func apiKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// apiLogin sends a login with any password, answer unchecked.
func apiLogin(e *env, addr, pw string) *resp {
	e.t.Helper()
	return e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": addr, "password": pw}})
}

// apiWantLogin fails unless addr logs in with pw and returns the tokens.
func apiWantLogin(e *env, what, addr, pw string) session {
	e.t.Helper()
	r := apiLogin(e, addr, pw)
	if r.Code != http.StatusOK {
		e.t.Fatalf("%s: login answered %d, want 200: %s", what, r.Code, r.Raw)
	}
	return e.sessionOf(r)
}

// apiWantNoLogin fails unless the login of addr with pw is refused as
// invalid credentials.
func apiWantNoLogin(e *env, what, addr, pw string) {
	e.t.Helper()
	apiWantErr(e.t, what, apiLogin(e, addr, pw), http.StatusUnauthorized, "invalid_credentials")
}

// apiRefresh sends a refresh with the token in the body, answer
// unchecked.
func apiRefresh(e *env, refresh string) *resp {
	e.t.Helper()
	return e.send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": refresh}})
}

// apiUser checks the {"user":{id,email,created_at}} shape and returns the
// user object.
func apiUser(t testing.TB, what string, r *resp) map[string]any {
	t.Helper()
	if got := apiKeys(r.Body); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("%s: body keys %v, want [user]: %s", what, got, r.Raw)
	}
	u, _ := r.Body["user"].(map[string]any)
	if got := apiKeys(u); !slices.Equal(got, []string{"created_at", "email", "id"}) {
		t.Fatalf("%s: user keys %v, want [created_at email id]: %s", what, got, r.Raw)
	}
	id, _ := u["id"].(string)
	if n, err := strconv.ParseUint(id, 10, 64); err != nil || n == 0 {
		t.Fatalf("%s: user id %v is not a decimal string: %s", what, u["id"], r.Raw)
	}
	return u
}

// apiWantTokens checks the login answer's shape, headers and refresh
// cookie.
func apiWantTokens(t testing.TB, what string, e *env, r *resp) {
	t.Helper()
	want := []string{"access_token", "expires_at", "expires_in", "iat", "refresh_expires_in", "refresh_token", "token_type"}
	if got := apiKeys(r.Body); !slices.Equal(got, want) {
		t.Fatalf("%s: body keys %v, want %v: %s", what, got, want, r.Raw)
	}
	if r.str("token_type") != "Bearer" {
		t.Errorf("%s: token_type %v, want Bearer", what, r.Body["token_type"])
	}
	if got, _ := r.Body["expires_in"].(float64); got != 900 {
		t.Errorf("%s: expires_in %v, want 900", what, r.Body["expires_in"])
	}
	if got, _ := r.Body["refresh_expires_in"].(float64); got != e.cfg.JWT.RefreshTTL.Seconds() {
		t.Errorf("%s: refresh_expires_in %v, want %v", what, r.Body["refresh_expires_in"], e.cfg.JWT.RefreshTTL.Seconds())
	}
	if r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("%s: empty token: %s", what, r.Raw)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, got)
	}
	c := r.cookie("refresh_token")
	switch {
	case c == nil:
		t.Errorf("%s: no refresh_token cookie", what)
	case c.Value != r.str("refresh_token") || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode ||
		c.Path != "/api/v1/auth" || c.MaxAge != int(e.cfg.JWT.RefreshTTL.Seconds()):
		t.Errorf("%s: refresh cookie %+v: want the refresh token, HttpOnly, Secure, SameSite=Strict, Path=/api/v1/auth, Max-Age=refresh TTL", what, c)
	}
}

// apiStrategyCaps pins what GET /api/v1/strategy reports for the two
// baselines.
var apiStrategyCaps = map[string]map[string]bool{
	"stateless": {
		"logout_this_device": false, "logout_all_devices": false, "logout_other_devices": false,
		"list_devices": false, "revoke_device": false, "device_limit": false,
		"revoke_on_password_change": false, "revoke_on_account_deletion": false,
		"refresh_supersedes_access": false,
	},
	"password_key": {
		"logout_this_device": false, "logout_all_devices": true, "logout_other_devices": true,
		"list_devices": false, "revoke_device": false, "device_limit": false,
		"revoke_on_password_change": true, "revoke_on_account_deletion": true,
		"refresh_supersedes_access": false,
	},
}

// TestAccountLifecycle walks one account through every endpoint of the
// foundation under the two baselines, on every database: stateless, which
// cannot take an access token back (its old tokens keep verifying after a
// password change, a reset and even the account's deletion, though /me
// answers 401 for a deleted account), and password_key, the cheapest
// strategy that can. The other strategies' revocation behaviour is the
// subject of the scenario tests; running this walk under each of them too
// would double the package's run time under -race for little more.
func TestAccountLifecycle(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"stateless", "password_key"} {
			t.Run(name, func(t *testing.T) { apiLifecycle(t, driver, name) })
		}
	})
}

// apiLifecycle runs the walk on a fresh server; each step builds on the
// state the one before left, so the walk stops at the first failing step.
func apiLifecycle(t *testing.T, driver, name string) {
	e := newEnv(t, driver, name)
	revokes := name != "stateless"
	const (
		raw    = "  Alice@Example.COM \t"
		addr   = "alice@example.com"
		newPW  = "a brand new passphrase"
		reset1 = "first reset passphrase"
		reset2 = "second reset passphrase"
	)
	var uid string
	steps := []struct {
		name string
		fn   func(e *env)
	}{
		{"register", func(e *env) { uid = apiStepRegister(e, raw, addr) }},
		{"login", func(e *env) { apiStepLogin(e, addr) }},
		{"verify", func(e *env) { apiStepVerify(e, addr, uid) }},
		{"me", func(e *env) { apiStepMe(e, addr, uid) }},
		{"strategy", apiStepStrategy},
		{"health", apiStepHealth},
		{"logout", func(e *env) { apiStepLogout(e, addr) }},
		{"logout-all", func(e *env) { apiStepLogoutAll(e, addr, revokes) }},
		{"change-password", func(e *env) { apiStepChangePassword(e, addr, password, newPW, revokes) }},
		{"password-reset", func(e *env) { apiStepReset(e, addr, newPW, reset1, revokes) }},
		{"reset-token-expiry", func(e *env) { apiStepResetExpiry(e, addr, reset1, reset2) }},
		{"delete", func(e *env) { apiStepDelete(e, addr, reset2, uid, revokes) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.fn(e.apiBind(t)) }) {
			return
		}
	}
}

// apiStepRegister registers raw, addr written with stray case and blanks,
// and returns the id.
func apiStepRegister(e *env, raw, addr string) string {
	t := e.t
	r := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": raw, "password": password}})
	u := apiUser(t, "register", r)
	if u["email"] != addr {
		t.Errorf("register: email %v, want it trimmed and lowercased to %q", u["email"], addr)
	}
	ca, _ := u["created_at"].(string)
	created, err := time.Parse(time.RFC3339Nano, ca)
	if err != nil || !created.Equal(e.clock.Now()) {
		t.Errorf("register: created_at %v (%v), want the clock's %v", u["created_at"], err, e.clock.Now())
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("register: Cache-Control %q, want no-store", got)
	}
	// The stored address is the normalized one: another spelling of it is
	// the same account.
	dup := e.send(req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": strings.ToUpper(addr), "password": password}})
	apiWantErr(t, "register again in upper case", dup, http.StatusConflict, "email_taken")
	if n := e.count(&models.User{}, "email = ?", addr); n != 1 {
		t.Fatalf("%d users with %s, want 1", n, addr)
	}
	id, _ := u["id"].(string)
	return id
}

func apiStepLogin(e *env, addr string) {
	t := e.t
	r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": addr, "password": password, "device_name": "laptop"}})
	apiWantTokens(t, "login", e, r)
	e.sessionOf(r)
	// The email of a login is normalized like the registration's.
	apiWantLogin(e, "login with the email in another case", " "+strings.ToUpper(addr)+" ", password)
	if n := e.count(&models.RefreshToken{}, "1 = 1"); n != 2 {
		t.Errorf("%d refresh tokens after two logins, want 2", n)
	}
}

func apiStepVerify(e *env, addr, uid string) {
	t := e.t
	s := apiWantLogin(e, "login", addr, password)
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/auth/verify", token: s.access})
	if r.Body["active"] != true {
		t.Errorf("verify: active %v, want true", r.Body["active"])
	}
	if sub, ok := r.Body["sub"].(string); !ok || sub != uid {
		t.Errorf("verify: sub %#v, want the string %q", r.Body["sub"], uid)
	}
	exp, okExp := r.Body["exp"].(float64)
	iat, okIat := r.Body["iat"].(float64)
	now := e.clock.Now()
	if !okExp || !okIat || int64(iat) != now.Unix() || int64(exp) != now.Add(e.cfg.JWT.AccessTTL).Unix() {
		t.Errorf("verify: exp %#v iat %#v, want the numbers %d and %d", r.Body["exp"], r.Body["iat"], now.Add(e.cfg.JWT.AccessTTL).Unix(), now.Unix())
	}
	if r.str("iss") != e.cfg.JWT.Issuer {
		t.Errorf("verify: iss %v, want %q", r.Body["iss"], e.cfg.JWT.Issuer)
	}
	if aud, _ := r.Body["aud"].([]any); !slices.Contains(aud, any(e.cfg.JWT.Audience)) {
		t.Errorf("verify: aud %v, want it to hold %q", r.Body["aud"], e.cfg.JWT.Audience)
	}
	if r.str("strategy") != e.name || r.str("sid") == "" || r.str("jti") == "" {
		t.Errorf("verify: strategy %v sid %v jti %v, want %q and non-empty ids", r.Body["strategy"], r.Body["sid"], r.Body["jti"], e.name)
	}
	if got := r.Header.Get("X-Auth-User-Id"); got != uid {
		t.Errorf("verify: X-Auth-User-Id %q, want %q", got, uid)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("verify: Cache-Control %q, want no-store", got)
	}
}

func apiStepMe(e *env, addr, uid string) {
	t := e.t
	s := apiWantLogin(e, "login", addr, password)
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/me", token: s.access})
	u := apiUser(t, "me", r)
	if u["id"] != uid || u["email"] != addr {
		t.Errorf("me: %v, want id %s and email %s", u, uid, addr)
	}
	ca, _ := u["created_at"].(string)
	created, err := time.Parse(time.RFC3339Nano, ca)
	if err != nil || !created.Equal(e.clock.Now()) {
		t.Errorf("me: created_at %v (%v), want the registration time %v", u["created_at"], err, e.clock.Now())
	}
	apiWantErr(t, "me without a token", e.send(req{method: "GET", path: "/api/v1/me"}), http.StatusUnauthorized, "token_missing")
}

func apiStepStrategy(e *env) {
	t := e.t
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/strategy"})
	if got := apiKeys(r.Body); !slices.Equal(got, []string{"capabilities", "name"}) || r.str("name") != e.name {
		t.Fatalf("strategy: %s, want name %q and capabilities", r.Raw, e.name)
	}
	got, _ := r.Body["capabilities"].(map[string]any)
	want, ok := apiStrategyCaps[e.name]
	if !ok {
		t.Fatalf("no pinned capabilities for %s", e.name)
	}
	if len(got) != len(want) {
		t.Fatalf("strategy: capabilities %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("strategy: capability %s = %v, want %v", k, got[k], v)
		}
	}
}

func apiStepHealth(e *env) {
	t := e.t
	if r := e.do(http.StatusOK, req{method: "GET", path: "/healthz"}); r.str("status") != "ok" {
		t.Errorf("healthz: %s, want status ok", r.Raw)
	}
	if r := e.do(http.StatusOK, req{method: "GET", path: "/readyz"}); r.str("status") != "ready" {
		t.Errorf("readyz: %s, want status ready", r.Raw)
	}
	apiWantErr(t, "unknown route", e.send(req{method: "GET", path: "/api/v1/nope"}), http.StatusNotFound, "not_found")
}

func apiStepLogout(e *env, addr string) {
	t := e.t
	s := apiWantLogin(e, "login", addr, password)
	r := e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: s.access})
	if len(r.Raw) != 0 {
		t.Errorf("logout: body %q, want none", r.Raw)
	}
	if c := r.cookie("refresh_token"); c == nil || c.Value != "" || c.MaxAge >= 0 {
		t.Errorf("logout: refresh cookie %+v, want it cleared", c)
	}
	if n := e.count(&models.RefreshToken{}, "family_id = ? AND revoked_at IS NULL", s.loginID); n != 0 {
		t.Errorf("logout: %d live refresh tokens of the login, want 0", n)
	}
}

// apiStepLogoutAll: stateless cannot end access tokens, and says so with
// 501 naming itself; every other strategy ends all of the user's logins.
func apiStepLogoutAll(e *env, addr string, revokes bool) {
	t := e.t
	first := apiWantLogin(e, "first login", addr, password)
	second := apiWantLogin(e, "second login", addr, password)
	r := e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: second.access})
	if !revokes {
		apiWantErr(t, "logout-all", r, http.StatusNotImplemented, "not_supported")
		if msg := r.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, e.name) {
			t.Errorf("logout-all: message %q does not name the strategy %s", msg, e.name)
		}
		e.wantVerify("first login after refused logout-all", first.access, http.StatusOK)
		e.wantVerify("second login after refused logout-all", second.access, http.StatusOK)
		return
	}
	if r.Code != http.StatusNoContent {
		t.Fatalf("logout-all: %d, want 204: %s", r.Code, r.Raw)
	}
	e.wantVerify("first login after logout-all", first.access, http.StatusUnauthorized)
	e.wantVerify("second login after logout-all", second.access, http.StatusUnauthorized)
	apiWantErr(t, "refresh of the second login after logout-all", apiRefresh(e, second.refresh), http.StatusUnauthorized, "token_revoked")
	apiWantLogin(e, "login after logout-all", addr, password)
}

// apiStepChangePassword: the answer carries a fresh login; the old token
// dies except under stateless, where it verifies until it expires.
func apiStepChangePassword(e *env, addr, oldPW, newPW string, revokes bool) {
	t := e.t
	s := apiWantLogin(e, "login", addr, oldPW)
	r := e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: s.access,
		body: map[string]string{"current_password": oldPW, "new_password": newPW}})
	apiWantTokens(t, "change password", e, r)
	fresh := e.sessionOf(r)
	e.wantVerify("token of the password change", fresh.access, http.StatusOK)
	if revokes {
		e.wantVerify("token from before the password change", s.access, http.StatusUnauthorized)
	} else {
		e.wantVerify("stateless token from before the password change", s.access, http.StatusOK)
	}
	// Refresh tokens can be taken back under every strategy, stateless
	// too: the login from before the change cannot mint new access tokens.
	apiWantErr(t, "refresh of the login from before the change", apiRefresh(e, s.refresh), http.StatusUnauthorized, "token_revoked")
	if r := apiRefresh(e, fresh.refresh); r.Code != http.StatusOK {
		t.Errorf("refresh of the login the change started: %d %s, want 200", r.Code, r.Raw)
	}
	apiWantNoLogin(e, "login with the old password", addr, oldPW)
	apiWantLogin(e, "login with the new password", addr, newPW)
}

// apiStepReset: the answer is the same whether or not the account exists,
// and carries no token (cfg.Reset.ExposeToken is off by default); the
// confirmation ends every login except under stateless, and the token is
// single-use.
func apiStepReset(e *env, addr, oldPW, newPW string, revokes bool) {
	t := e.t
	s := apiWantLogin(e, "login", addr, oldPW)
	other := apiWantLogin(e, "login on another device", addr, oldPW)
	resets := e.count(&models.ResetToken{}, "1 = 1")
	known := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": strings.ToUpper(addr)}})
	unknown := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": "nobody@example.com"}})
	if !bytes.Equal(known.Raw, unknown.Raw) {
		t.Errorf("reset request: %s for an account, %s for none; want the same answer", known.Raw, unknown.Raw)
	}
	if _, ok := known.Body["reset_token"]; ok {
		t.Errorf("reset request: body %s has reset_token although reset.expose_token is off", known.Raw)
	}
	if n := e.count(&models.ResetToken{}, "1 = 1"); n != resets+1 {
		t.Errorf("reset tokens: %d, want %d: one for the account, none for the unknown email", n, resets+1)
	}
	if e.mailer.Last("nobody@example.com") != "" {
		t.Errorf("a reset token was sent to an unknown address")
	}
	token := e.mailer.Last(addr)
	if token == "" {
		t.Fatalf("no reset token was sent to %s", addr)
	}
	r := e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": token, "new_password": newPW}})
	if len(r.Raw) != 0 {
		t.Errorf("reset confirm: body %q, want none", r.Raw)
	}
	for _, old := range []session{s, other} {
		if revokes {
			e.wantVerify("token from before the reset", old.access, http.StatusUnauthorized)
		} else {
			e.wantVerify("stateless token from before the reset", old.access, http.StatusOK)
		}
		apiWantErr(t, "refresh of a login from before the reset", apiRefresh(e, old.refresh), http.StatusUnauthorized, "token_revoked")
	}
	apiWantNoLogin(e, "login with the password before the reset", addr, oldPW)
	apiWantLogin(e, "login with the reset password", addr, newPW)

	again := e.send(req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": token, "new_password": "yet another passphrase"}})
	apiWantErr(t, "reset token used twice", again, http.StatusBadRequest, "invalid_reset_token")
	apiWantNoLogin(e, "login with the password of the second use", addr, "yet another passphrase")
	apiWantLogin(e, "login after the second use", addr, newPW)
}

// apiStepResetExpiry: a token past reset.ttl (30m) is refused and the
// password stays; a token within it still works. Access tokens are all
// expired after this step.
func apiStepResetExpiry(e *env, addr, curPW, newPW string) {
	t := e.t
	if e.cfg.Reset.TTL != 30*time.Minute {
		t.Fatalf("reset.ttl is %s, this step assumes the default 30m", e.cfg.Reset.TTL)
	}
	e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": addr}})
	old := e.mailer.Last(addr)
	e.clock.Advance(29 * time.Minute)
	e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": addr}})
	young := e.mailer.Last(addr)
	e.clock.Advance(2 * time.Minute) // old is 31 minutes old, young 2

	r := e.send(req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": old, "new_password": newPW}})
	apiWantErr(t, "expired reset token", r, http.StatusBadRequest, "invalid_reset_token")
	apiWantNoLogin(e, "login with the password of the expired token", addr, newPW)
	apiWantLogin(e, "login after the expired token", addr, curPW)

	e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": young, "new_password": newPW}})
	apiWantLogin(e, "login with the password of the young token", addr, newPW)
}

// apiStepDelete: the account and its rows go; its tokens die except under
// stateless, but even there /me answers 401; the email is free again and
// the new account shares nothing with the old one.
func apiStepDelete(e *env, addr, pw, uid string, revokes bool) {
	t := e.t
	s := apiWantLogin(e, "login", addr, pw)
	id, _ := strconv.ParseUint(uid, 10, 64)
	r := e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: s.access, body: map[string]string{"password": pw}})
	if c := r.cookie("refresh_token"); c == nil || c.Value != "" {
		t.Errorf("delete: refresh cookie %+v, want it cleared", c)
	}
	for _, m := range []any{&models.RefreshToken{}, &models.ResetToken{}, &models.Session{}} {
		if n := e.count(m, "user_id = ?", id); n != 0 {
			t.Errorf("delete: %d rows of %T left", n, m)
		}
	}
	if n := e.count(&models.User{}, "id = ?", id); n != 0 {
		t.Fatalf("delete: the user row is still there")
	}
	if revokes {
		e.wantVerify("token of the deleted account", s.access, http.StatusUnauthorized)
	} else {
		e.wantVerify("stateless token of the deleted account", s.access, http.StatusOK)
	}
	if r := apiRefresh(e, s.refresh); r.Code != http.StatusUnauthorized {
		t.Errorf("refresh of the deleted account: %d %s, want 401", r.Code, r.Raw)
	}
	me := e.send(req{method: "GET", path: "/api/v1/me", token: s.access})
	apiWantErr(t, "me of the deleted account", me, http.StatusUnauthorized, "token_invalid")
	apiWantNoLogin(e, "login of the deleted account", addr, pw)

	again := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": addr, "password": password}})
	if nid := apiUser(t, "register again", again)["id"]; nid == uid {
		t.Fatalf("register again: the new account got the deleted account's id %s", uid)
	}
	apiWantLogin(e, "login of the new account", addr, password)
	// The deleted account's token must not reach the account that took its
	// email.
	me = e.send(req{method: "GET", path: "/api/v1/me", token: s.access})
	apiWantErr(t, "me with the deleted account's token after re-registration", me, http.StatusUnauthorized, "token_invalid")
}

// TestPasswordResetExposeToken: with reset.expose_token on (development),
// the answer for an existing account carries the token that was mailed;
// an unknown email still gets no token.
func TestPasswordResetExposeToken(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) { c.Reset.ExposeToken = true })
		e.register(email(1))
		r := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
		if tok := r.str("reset_token"); tok == "" || tok != e.mailer.Last(email(1)) {
			t.Fatalf("reset_token %q, want the mailed token %q", tok, e.mailer.Last(email(1)))
		}
		r = e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(2)}})
		if _, ok := r.Body["reset_token"]; ok {
			t.Fatalf("reset_token for an unknown email: %s", r.Raw)
		}
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body: map[string]string{"token": e.mailer.Last(email(1)), "new_password": "exposed reset pass"}})
		apiWantLogin(e, "login with the reset password", email(1), "exposed reset pass")
	})
}

// apiState is what a failed request must leave as it was.
type apiState struct {
	users, refresh, liveRefresh, resets, unusedResets int64
	hash                                              string
	salt                                              []byte
}

func apiSnapshot(e *env, uid uint64) apiState {
	e.t.Helper()
	var u models.User
	if err := e.db.Take(&u, "id = ?", uid).Error; err != nil {
		e.t.Fatalf("load user %d: %v", uid, err)
	}
	return apiState{
		users:        e.count(&models.User{}, "1 = 1"),
		refresh:      e.count(&models.RefreshToken{}, "1 = 1"),
		liveRefresh:  e.count(&models.RefreshToken{}, "revoked_at IS NULL"),
		resets:       e.count(&models.ResetToken{}, "1 = 1"),
		unusedResets: e.count(&models.ResetToken{}, "used_at IS NULL"),
		hash:         u.PasswordHash,
		salt:         u.KeySalt,
	}
}

func (a apiState) equal(b apiState) bool {
	return a.users == b.users && a.refresh == b.refresh && a.liveRefresh == b.liveRefresh &&
		a.resets == b.resets && a.unusedResets == b.unusedResets && a.hash == b.hash && bytes.Equal(a.salt, b.salt)
}

// TestBadInput sends malformed, incomplete and oversized bodies to every
// endpoint that takes one. Each answers its documented code and changes
// nothing: no user, login, reset token or password appears or changes,
// and the caller's token (which password_key would kill on any password
// change) still verifies. The well-formed part of each bad body is valid,
// so a parser that let the defect through would change something.
func TestBadInput(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		const (
			addr    = "user1@example.com"
			newAddr = "new@example.com"
			newPW   = "another good passphrase"
		)
		uid, _ := strconv.ParseUint(e.register(addr), 10, 64)
		s := e.login(addr, "laptop")
		e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": addr}})
		resetTok := e.mailer.Last(addr)

		huge := strings.Repeat("a", 1<<20)
		long := strings.Repeat("p", 73)
		pw72 := strings.Repeat("p", 72)
		type row struct {
			name   string
			body   string
			status int
			code   string
		}
		const (
			bad     = http.StatusBadRequest
			badReq  = "invalid_request"
			unauth  = http.StatusUnauthorized
			badCred = "invalid_credentials"
		)
		// jsonBodies are the defects every JSON endpoint rejects the same
		// way; good is a valid body of the endpoint without its braces.
		jsonBodies := func(good string) []row {
			return []row{
				{"empty body", "", bad, badReq},
				{"bad JSON", "{" + good, bad, badReq},
				{"not an object (array)", "[{" + good + "}]", bad, badReq},
				{"not an object (string)", `"x"`, bad, badReq},
				{"not an object (null)", "null", bad, badReq},
				{"unknown field", "{" + good + `,"role":"admin"}`, bad, badReq},
				{"duplicate field", "{" + good + "," + good + "}", bad, badReq},
				{"trailing object", "{" + good + "}{}", bad, badReq},
				{"trailing garbage", "{" + good + "} x", bad, badReq},
				{"body over 1 MiB", "{" + good + `,"pad":"` + huge + `"}`, http.StatusRequestEntityTooLarge, "request_too_large"},
			}
		}
		registerGood := `"email":"` + newAddr + `","password":"` + password + `"`
		confirmGood := `"token":"` + resetTok + `","new_password":"` + newPW + `"`
		endpoints := []struct {
			name, method, path string
			token              string
			good               string
			rows               []row
		}{
			{"register", "POST", "/api/v1/auth/register", "", registerGood, []row{
				{"missing email", `{"password":"` + password + `"}`, bad, badReq},
				{"missing password", `{"email":"` + newAddr + `"}`, bad, badReq},
				{"email of wrong type", `{"email":1,"password":"` + password + `"}`, bad, badReq},
				{"bad email", `{"email":"not-an-email","password":"` + password + `"}`, bad, badReq},
				{"email without a dot in the domain", `{"email":"a@localhost","password":"` + password + `"}`, bad, badReq},
				{"email with a display name", `{"email":"New <` + newAddr + `>","password":"` + password + `"}`, bad, badReq},
				{"short password", `{"email":"` + newAddr + `","password":"short"}`, bad, badReq},
				{"password over 72 bytes", `{"email":"` + newAddr + `","password":"` + long + `"}`, bad, badReq},
				{"taken email", `{"email":"` + addr + `","password":"` + password + `"}`, http.StatusConflict, "email_taken"},
			}},
			{"login", "POST", "/api/v1/auth/login", "",
				`"email":"` + addr + `","password":"` + password + `"`, []row{
					{"missing email", `{"password":"` + password + `"}`, bad, badReq},
					{"missing password", `{"email":"` + addr + `"}`, bad, badReq},
					{"password over 72 bytes", `{"email":"` + addr + `","password":"` + password + long + `"}`, bad, badReq},
					{"device name over 100 bytes", `{"email":"` + addr + `","password":"` + password + `","device_name":"` + strings.Repeat("d", 101) + `"}`, bad, badReq},
					{"bad email", `{"email":"not-an-email","password":"` + password + `"}`, unauth, badCred},
					{"wrong password", `{"email":"` + addr + `","password":"wrong password"}`, unauth, badCred},
				}},
			{"change password", "PUT", "/api/v1/me/password", s.access,
				`"current_password":"` + password + `","new_password":"` + newPW + `"`, []row{
					{"missing current password", `{"new_password":"` + newPW + `"}`, bad, badReq},
					{"missing new password", `{"current_password":"` + password + `"}`, bad, badReq},
					{"short new password", `{"current_password":"` + password + `","new_password":"short"}`, bad, badReq},
					{"new password over 72 bytes", `{"current_password":"` + password + `","new_password":"` + long + `"}`, bad, badReq},
					{"wrong current password", `{"current_password":"wrong password","new_password":"` + newPW + `"}`, unauth, badCred},
					{"current password over 72 bytes", `{"current_password":"` + password + long + `","new_password":"` + newPW + `"}`, unauth, badCred},
				}},
			{"reset request", "POST", "/api/v1/auth/password-reset", "",
				`"email":"` + addr + `"`, []row{
					{"missing email", `{}`, bad, badReq},
					{"bad email", `{"email":"not-an-email"}`, bad, badReq},
					{"email over 254 characters", `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, bad, badReq},
				}},
			{"reset confirm", "POST", "/api/v1/auth/password-reset/confirm", "", confirmGood, []row{
				{"missing token", `{"new_password":"` + newPW + `"}`, bad, "invalid_reset_token"},
				{"unknown token", `{"token":"nope","new_password":"` + newPW + `"}`, bad, "invalid_reset_token"},
				{"token over 128 bytes", `{"token":"` + resetTok + strings.Repeat("t", 128) + `","new_password":"` + newPW + `"}`, bad, "invalid_reset_token"},
				{"missing new password", `{"token":"` + resetTok + `"}`, bad, badReq},
				{"short new password", `{"token":"` + resetTok + `","new_password":"short"}`, bad, badReq},
				{"new password over 72 bytes", `{"token":"` + resetTok + `","new_password":"` + long + `"}`, bad, badReq},
			}},
			{"delete", "DELETE", "/api/v1/me", s.access,
				`"password":"` + password + `"`, []row{
					{"missing password", `{}`, bad, badReq},
					{"wrong password", `{"password":"wrong password"}`, unauth, badCred},
					{"password over 72 bytes", `{"password":"` + password + long + `"}`, unauth, badCred},
					{"password of 72 bytes", `{"password":"` + pw72 + `"}`, unauth, badCred},
				}},
		}
		for _, ep := range endpoints {
			t.Run(ep.name, func(t *testing.T) {
				e := e.apiBind(t)
				for _, r := range append(jsonBodies(ep.good), ep.rows...) {
					t.Run(r.name, func(t *testing.T) {
						e := e.apiBind(t)
						before := apiSnapshot(e, uid)
						got := e.send(req{method: ep.method, path: ep.path, token: ep.token, body: r.body})
						apiWantErr(t, ep.name+": "+r.name, got, r.status, r.code)
						if after := apiSnapshot(e, uid); !after.equal(before) {
							t.Fatalf("the request changed the database: before %+v, after %+v", before, after)
						}
						e.wantVerify("the caller's token", s.access, http.StatusOK)
					})
				}
			})
		}
		// Nothing was registered, and the account, its password and its
		// reset token are as they were: the valid bodies the defects were
		// built from all work.
		if n := e.count(&models.User{}, "email = ?", newAddr); n != 0 {
			t.Fatalf("%s was registered by a bad request", newAddr)
		}
		apiWantNoLogin(e, "login with the password of the bad requests", addr, newPW)
		apiWantLogin(e, "login with the password from before", addr, password)
		e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: "{" + registerGood + "}"})
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: "{" + confirmGood + "}"})
		apiWantLogin(e, "login with the reset password", addr, newPW)
	})
}
