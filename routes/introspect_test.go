package routes_test

// POST /api/v1/auth/introspect (RFC 7662): client authentication, the
// answer for every kind of token under every strategy, fail-closed, the
// form's bounds, the rate limit, and no secret in the logs.

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/models/dbtest"
)

const (
	rsID     = "orders-service"
	rsSecret = "s3cret-of-the-orders-service"
)

const (
	billingID     = "billing"
	billingSecret = "another-secret-0123456789"
)

// withIntrospection configures two introspection clients; the orders
// service may introspect refresh tokens, billing may not.
func withIntrospection(c *config.Config) {
	c.Introspection.Clients = []string{rsID + ":" + rsSecret, billingID + ":" + billingSecret}
	c.Introspection.RefreshTokenClients = []string{rsID}
}

// oauthWantErr fails unless r is the RFC 6749 §5.2 error answer
// status/code: {"error": code, "error_description": text} and nothing
// else, with the request id in X-Request-Id only.
func oauthWantErr(t testing.TB, what string, r *resp, status int, code string) {
	t.Helper()
	if r.Code != status || r.Body["error"] != code {
		t.Fatalf("%s: got %d %s, want %d {\"error\":%q}", what, r.Code, r.Raw, status, code)
	}
	if got := slices.Sorted(maps.Keys(r.Body)); !slices.Equal(got, []string{"error", "error_description"}) {
		t.Fatalf("%s: keys %v, want [error error_description]: %s", what, got, r.Raw)
	}
	if d, _ := r.Body["error_description"].(string); d == "" {
		t.Fatalf("%s: empty error_description: %s", what, r.Raw)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%s: no X-Request-Id", what)
	}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// introspect posts the form with the given Authorization header ("" sends
// none).
func (e *env) introspect(auth string, form url.Values) *resp {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if auth != "" {
		h["Authorization"] = auth
	}
	return e.send(req{method: "POST", path: "/api/v1/auth/introspect", body: form.Encode(), header: h})
}

// introspectToken introspects token as the orders service and fails the
// test unless the answer is 200.
func (e *env) introspectToken(token string, hint ...string) *resp {
	e.t.Helper()
	f := url.Values{"token": {token}}
	if len(hint) > 0 {
		f.Set("token_type_hint", hint[0])
	}
	r := e.introspect(basic(rsID, rsSecret), f)
	if r.Code != http.StatusOK {
		e.t.Fatalf("introspect: %d %s, want 200", r.Code, r.Raw)
	}
	return r
}

// wantInactive fails unless r is exactly {"active":false}.
func wantInactive(t testing.TB, what string, r *resp) {
	t.Helper()
	if string(r.Raw) != `{"active":false}` {
		t.Errorf("%s: introspection answered %s, want exactly {\"active\":false}", what, r.Raw)
	}
}

func active(r *resp) bool { return r.Body["active"] == true }

// TestIntrospectTokens: under every strategy an access token is active
// exactly when verify accepts it, with verify's claims, and a refresh
// token is active exactly while it can be exchanged.
func TestIntrospectTokens(t *testing.T) {
	t.Parallel()
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name, withIntrospection)
		var uids []string
		for i := range 4 {
			uids = append(uids, e.register(email(i)))
		}
		valid := e.login(email(0), "laptop")
		loggedOut := e.login(email(1), "laptop")
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: loggedOut.access})
		changed := e.login(email(2), "laptop")
		e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: changed.access,
			body: map[string]string{"current_password": password, "new_password": password + "!"}})
		deleted := e.login(email(3), "laptop")
		e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: deleted.access, body: map[string]string{"password": password}})

		t.Run("access tokens", func(t *testing.T) {
			e := e.apiBind(t)
			cases := []struct {
				name  string
				token string
				// want is the answer where the strategy decides alike for
				// every strategy: "" defers to verify alone.
				want string
			}{
				{"valid", valid.access, "active"},
				{"after logout", loggedOut.access, ""},
				{"after a password change", changed.access, ""},
				{"of a deleted account", deleted.access, ""},
				{"tampered signature", tamper(valid.access), "inactive"},
				{"garbage", "not.a.jwt", "inactive"},
				{"a refresh token's shape", "x.y", "inactive"},
				{"too long", strings.Repeat("a.", 5000) + "a", "inactive"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := e.apiBind(t)
					v := e.send(req{method: "GET", path: "/api/v1/auth/verify", token: c.token})
					r := e.introspectToken(c.token)
					if active(r) != (v.Code == http.StatusOK) {
						t.Fatalf("introspection says active=%v, verify answered %d", active(r), v.Code)
					}
					if (c.want == "active") != active(r) && c.want != "" {
						t.Fatalf("introspection: %s, want %s", r.Raw, c.want)
					}
					if !active(r) {
						wantInactive(t, c.name, r)
						return
					}
					wantKeys := []string{"aal", "active", "amr", "aud", "exp", "iat", "iss", "jti", "sid", "sub", "token_type"}
					if got := slices.Sorted(maps.Keys(r.Body)); !slices.Equal(got, wantKeys) {
						t.Errorf("keys %v, want %v", got, wantKeys)
					}
					for _, k := range []string{"sub", "exp", "iat", "iss", "jti", "sid", "aal"} {
						if r.Body[k] != v.Body[k] {
							t.Errorf("%s: introspection %v, verify %v", k, r.Body[k], v.Body[k])
						}
					}
					if aud, _ := r.Body["aud"].([]any); len(aud) != 1 || aud[0] != e.cfg.JWT.Audience {
						t.Errorf("aud %v, want [%s]", r.Body["aud"], e.cfg.JWT.Audience)
					}
					if r.str("token_type") != "Bearer" {
						t.Errorf("token_type %q, want Bearer", r.str("token_type"))
					}
				})
			}
			// Where the strategy revokes at once, the revoked ones are
			// inactive.
			if name != "stateless" {
				for what, tok := range map[string]string{"password change": changed.access, "deleted account": deleted.access} {
					wantInactive(t, what, e.introspectToken(tok))
				}
			}
		})

		t.Run("refresh tokens", func(t *testing.T) {
			e := e.apiBind(t)
			r := e.introspectToken(valid.refresh, "refresh_token")
			wantKeys := []string{"active", "exp", "iat", "iss", "sid", "sub"}
			if got := slices.Sorted(maps.Keys(r.Body)); !active(r) || !slices.Equal(got, wantKeys) {
				t.Fatalf("a live refresh token: %s, want active with %v", r.Raw, wantKeys)
			}
			wantExp := float64(e.clock.Now().Add(e.cfg.JWT.RefreshTTL).Unix())
			if r.str("sub") != uids[0] || r.str("sid") != valid.loginID || r.Body["exp"] != wantExp {
				t.Errorf("a live refresh token: %s, want sub %s, sid %s, exp %.0f (and no token_type)", r.Raw, uids[0], valid.loginID, wantExp)
			}
			// A client not in introspection.refresh_token_clients cannot
			// tell a live refresh token from garbage: it would otherwise
			// take it for a bearer token.
			for _, hint := range []string{"", "refresh_token", "access_token"} {
				f := url.Values{"token": {valid.refresh}}
				if hint != "" {
					f.Set("token_type_hint", hint)
				}
				r := e.introspect(basic(billingID, billingSecret), f)
				if r.Code != http.StatusOK {
					t.Fatalf("billing introspects a refresh token: %d %s, want 200", r.Code, r.Raw)
				}
				wantInactive(t, "a live refresh token, to a client not allowed refresh tokens (hint "+hint+")", r)
			}
			if r := e.introspect(basic(billingID, billingSecret), url.Values{"token": {valid.access}}); !active(r) {
				t.Errorf("billing introspects an access token: %s, want active", r.Raw)
			}
			// The hint is not needed: the token's shape decides.
			if !active(e.introspectToken(valid.refresh, "access_token")) {
				t.Errorf("a live refresh token with the hint access_token is not active")
			}
			next := e.sessionOf(apiRefresh(e, valid.refresh))
			wantInactive(t, "a spent refresh token", e.introspectToken(valid.refresh))
			if r := e.introspectToken(next.refresh); !active(r) || r.str("sid") != valid.loginID {
				t.Errorf("its successor: %s, want active with the same sid", r.Raw)
			}
			// Active exactly when a refresh would succeed, and only the
			// live one would: introspect first, then spend.
			for _, c := range []struct {
				what, tok  string
				wantActive bool
			}{
				{"after logout", loggedOut.refresh, false},
				{"after a password change", changed.refresh, false},
				{"of a deleted account", deleted.refresh, false},
				{"unknown", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
				{"too long", strings.Repeat("A", 200), false},
				{"live", next.refresh, true},
			} {
				r := e.introspectToken(c.tok)
				if active(r) != c.wantActive {
					t.Errorf("%s: introspection active=%v, want %v: %s", c.what, active(r), c.wantActive, r.Raw)
				}
				if !active(r) {
					wantInactive(t, c.what, r)
				}
				if got := apiRefresh(e, c.tok).Code == http.StatusOK; got != active(r) {
					t.Errorf("%s: introspection active=%v, refresh succeeded=%v", c.what, active(r), got)
				}
			}
		})

		t.Run("expired", func(t *testing.T) {
			e := e.apiBind(t)
			fresh := e.login(email(0), "phone")
			e.clock.Advance(e.cfg.JWT.AccessTTL + time.Minute)
			wantInactive(t, "an expired access token", e.introspectToken(fresh.access))
			if !active(e.introspectToken(fresh.refresh)) {
				t.Fatalf("the refresh token of an expired access token is not active")
			}
			e.clock.Advance(e.cfg.JWT.RefreshTTL)
			wantInactive(t, "an expired refresh token", e.introspectToken(fresh.refresh))
		})
	})
}

// tamper changes a character in the middle of the token's signature.
func tamper(token string) string {
	i := strings.LastIndex(token, ".") + 10
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// TestIntrospectClientAuth: only a configured client with its own secret
// gets an answer; every failure is the same 401 invalid_client with the
// Basic challenge; with no client configured the endpoint is 404.
func TestIntrospectClientAuth(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", withIntrospection)
		e.register(email(1))
		s := e.login(email(1), "laptop")
		form := url.Values{"token": {s.access}}
		if r := e.introspect(basic(rsID, rsSecret), form); r.Code != http.StatusOK || !active(r) {
			t.Fatalf("the right credentials: %d %s, want 200 active", r.Code, r.Raw)
		}
		if r := e.introspect(basic(billingID, billingSecret), form); r.Code != http.StatusOK || !active(r) {
			t.Fatalf("the second client: %d %s, want 200 active", r.Code, r.Raw)
		}
		var first *resp
		for _, c := range []struct{ name, auth string }{
			{"none", ""},
			{"wrong secret", basic(rsID, rsSecret+"x")},
			{"secret of another client", basic(rsID, billingSecret)},
			{"unknown client", basic("stranger", rsSecret)},
			{"empty secret", basic(rsID, "")},
			{"secret as the id", basic(rsSecret, rsID)},
			{"not base64", "Basic %%%"},
			{"bearer token", "Bearer " + s.access},
			{"a prefix of the secret", basic(rsID, rsSecret[:len(rsSecret)-1])},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.apiBind(t).introspect(c.auth, form)
				oauthWantErr(t, c.name, r, http.StatusUnauthorized, "invalid_client")
				if got := r.Header.Get("WWW-Authenticate"); got != `Basic realm="authserver"` {
					t.Errorf("WWW-Authenticate %q, want the Basic challenge", got)
				}
				if first == nil {
					first = r
				} else if string(r.Raw) != string(first.Raw) {
					t.Errorf("the answer differs from another failure's: %s vs %s", r.Raw, first.Raw)
				}
			})
		}
	})
	t.Run("no clients", func(t *testing.T) {
		e := newEnv(t, "sqlite", "password_key")
		oauthWantErr(t, "no clients", e.introspect(basic(rsID, rsSecret), url.Values{"token": {"x"}}), http.StatusNotFound, "invalid_request")
	})
}

// TestIntrospectForm: the body is a bounded form with one token; tokens
// in the URL are refused.
func TestIntrospectForm(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withIntrospection)
	auth := basic(rsID, rsSecret)
	send := func(ct, path, body string) *resp {
		return e.send(req{method: "POST", path: path, body: body, header: map[string]string{"Content-Type": ct, "Authorization": auth}})
	}
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		name, ct, path, body string
		status               int
		code                 string
	}{
		{"JSON", "application/json", "/api/v1/auth/introspect", `{"token":"x"}`, 400, "invalid_request"},
		{"no token", form, "/api/v1/auth/introspect", "token_type_hint=access_token", 400, "invalid_request"},
		{"empty token", form, "/api/v1/auth/introspect", "token=", 400, "invalid_request"},
		{"token twice", form, "/api/v1/auth/introspect", "token=a&token=b", 400, "invalid_request"},
		{"hint twice", form, "/api/v1/auth/introspect", "token=a&token_type_hint=x&token_type_hint=y", 400, "invalid_request"},
		{"token in the URL", form, "/api/v1/auth/introspect?token=a", "", 400, "invalid_request"},
		{"bad encoding", form, "/api/v1/auth/introspect", "token=%zz", 400, "invalid_request"},
		{"over 1 MiB", form, "/api/v1/auth/introspect", "token=" + strings.Repeat("a", 1<<20), 413, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			oauthWantErr(t, c.name, e.apiBind(t).send(req{method: "POST", path: c.path, body: c.body,
				header: map[string]string{"Content-Type": c.ct, "Authorization": auth}}), c.status, c.code)
		})
	}
	// A charset parameter and an unknown hint are fine.
	if r := send(form+"; charset=utf-8", "/api/v1/auth/introspect", "token=abc&token_type_hint=id_token&extra=1"); r.Code != http.StatusOK {
		t.Errorf("a form with a charset and an unknown hint: %d %s, want 200", r.Code, r.Raw)
	}
}

// TestIntrospectFailClosed: when the database cannot be read the answer is
// 503, never {"active": false} (which a client may cache as revoked) and
// never active. stateless needs no database for access tokens, like verify.
func TestIntrospectFailClosed(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name, withIntrospection, func(c *config.Config) { c.Cache.Enabled = false })
		e.register(email(1))
		s := e.login(email(1), "laptop")
		sqlDB, err := e.db.DB()
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlDB.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.introspect(basic(rsID, rsSecret), url.Values{"token": {s.refresh}})
		oauthWantErr(t, "a refresh token", r, http.StatusServiceUnavailable, "temporarily_unavailable")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		r = e.introspect(basic(rsID, rsSecret), url.Values{"token": {s.access}})
		if name == "stateless" {
			if r.Code != http.StatusOK || !active(r) {
				t.Fatalf("stateless access token: %d %s, want 200 active (no database needed)", r.Code, r.Raw)
			}
			return
		}
		oauthWantErr(t, "an access token", r, http.StatusServiceUnavailable, "temporarily_unavailable")
	})
}

// TestIntrospectRateLimit: introspection spends the verify_per_ip budget,
// before client authentication.
func TestIntrospectRateLimit(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withIntrospection, func(c *config.Config) { c.RateLimit.VerifyPerIP = "3/1m" })
	e.do(http.StatusUnauthorized, req{method: "GET", path: "/api/v1/auth/verify"})
	e.introspectToken("abc")
	if r := e.introspect(basic(rsID, "wrong-secret-0123456789"), url.Values{"token": {"abc"}}); r.Code != http.StatusUnauthorized {
		t.Fatalf("wrong secret within the budget: %d, want 401", r.Code)
	}
	r := e.introspect(basic(rsID, rsSecret), url.Values{"token": {"abc"}})
	oauthWantErr(t, "over verify_per_ip", r, http.StatusTooManyRequests, "temporarily_unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
}

// syncBuffer is a log sink that background goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestIntrospectLogsNoSecret: neither client secrets nor tokens reach the
// log, at debug level, on success, failure and a database outage.
func TestIntrospectLogsNoSecret(t *testing.T) {
	onDrivers(t, testIntrospectLogsNoSecret)
}

func testIntrospectLogsNoSecret(t *testing.T, driver string) {
	cfg := config.Defaults()
	cfg.Password.BcryptCost = 4
	cfg.Log.Level = "debug"
	cfg.NoLimits()
	withIntrospection(cfg)
	cfg.Cache.Enabled = false
	var logs syncBuffer
	db := dbtest.Open(t, driver)
	clk := newClock()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startServer(t, authserver.Options{Config: cfg, DB: db, Secret: testSecret, Log: log, Now: clk.Now})
	e := &env{t: t, driver: driver, name: cfg.Strategy, cfg: cfg, db: db, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: clk, mailer: &mailbox.Mailbox{}}
	e.register(email(1))
	s := e.login(email(1), "laptop")
	e.introspectToken(s.access)
	e.introspectToken(s.refresh)
	e.introspect(basic(rsID, rsSecret+"-wrong"), url.Values{"token": {s.access}})
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	_ = sqlDB.Close()
	e.introspect(basic(rsID, rsSecret), url.Values{"token": {s.refresh}})
	e.introspect(basic(rsID, rsSecret), url.Values{"token": {s.access}})
	out := logs.String()
	if !strings.Contains(out, "/api/v1/auth/introspect") {
		t.Fatalf("no request was logged: %s", out)
	}
	// The credentials as the client sent them, too: a logged
	// Authorization header would show them base64-encoded.
	sent := strings.TrimPrefix(basic(rsID, rsSecret), "Basic ")
	for what, secret := range map[string]string{"the client secret": rsSecret, "the Basic credentials": sent, "the access token": s.access, "the refresh token": s.refresh} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %s", what)
		}
	}
}
