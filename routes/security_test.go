package routes_test

// Security properties through the real router: forged and tampered tokens,
// the Authorization header, answers that must not tell an attacker
// anything, one winner among concurrent registrations, and failing closed
// when the database is gone.

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// secKey is the key a token of user uid is signed with: the server secret
// under stateless, and under the per-user-key strategies the HKDF
// derivation that strategy/keys.go documents. Tests prove it right by
// having a token signed with it accepted before forging anything with it.
func secKey(e *env, uid string) []byte {
	e.t.Helper()
	if e.name == "stateless" {
		return testSecret
	}
	var u models.User
	if err := e.db.Take(&u, "id = ?", uid).Error; err != nil {
		e.t.Fatalf("load user %s: %v", uid, err)
	}
	info := "authserver access-token v2\x00" + e.name + "\x00" + uid + "\x00" + u.PasswordHash
	k, err := hkdf.Key(sha256.New, testSecret, u.KeySalt, info, 32)
	if err != nil {
		e.t.Fatalf("derive key: %v", err)
	}
	return k
}

// secClaims decodes the claims of a token the server issued.
func secClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", token, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	return c
}

// secWith returns a copy of claims with the changes applied; a nil value
// removes the claim.
func secWith(claims map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func secSegment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// secSign builds a token by hand: the header names alg, and the signature
// is HMAC with h over header.claims, or empty when h is nil. Building it by
// hand keeps the forgery independent of any JWT library's safeguards.
func secSign(t testing.TB, alg string, h func() hash.Hash, key []byte, claims map[string]any) string {
	t.Helper()
	signed := secSegment(t, map[string]string{"alg": alg, "typ": "JWT"}) + "." + secSegment(t, claims)
	if h == nil {
		return signed + "."
	}
	m := hmac.New(h, key)
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// secSplice puts the claims of one token between the header and
// signature of another.
func secSplice(t testing.TB, token string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	return parts[0] + "." + secSegment(t, claims) + "." + parts[2]
}

// secTamper flips the first character of the signature.
func secTamper(token string) string {
	i := strings.LastIndex(token, ".") + 1
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

func secVerify(e *env, token string) *resp {
	e.t.Helper()
	return e.send(req{method: "GET", path: "/api/v1/auth/verify", token: token})
}

// secWantSame fails unless two answers are indistinguishable to a client:
// status, body (but for the request id, which every answer has its own)
// and the WWW-Authenticate challenge.
func secWantSame(t testing.TB, what string, a, b *resp) {
	t.Helper()
	body := func(r *resp) string {
		return strings.Replace(string(r.Raw), `"request_id":"`+r.Header.Get("X-Request-Id")+`"`, `"request_id":"…"`, 1)
	}
	if a.Code != b.Code || body(a) != body(b) || a.Header.Get("WWW-Authenticate") != b.Header.Get("WWW-Authenticate") {
		t.Errorf("%s: answers differ:\n%d %s %q\n%d %s %q", what,
			a.Code, a.Raw, a.Header.Get("WWW-Authenticate"), b.Code, b.Raw, b.Header.Get("WWW-Authenticate"))
	}
}

// TestForgedTokens: under stateless (whose key is the server secret) and
// password_key (whose key the test derives), a token signed the server's
// way with the right key is accepted, and every deviation from that is
// refused: no alg "none", no other HMAC algorithm, no claims moved under
// another signature, no foreign issuer or audience, no token without exp
// or sid, none from the future, none over 4096 bytes.
func TestForgedTokens(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"stateless", "password_key"} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, driver, name)
				aID := e.register(email(1))
				e.register(email(2))
				a, b := e.login(email(1), "a"), e.login(email(2), "b")
				key := secKey(e, aID)
				base := secClaims(t, a.access)
				now := e.clock.Now()
				past := float64(now.Add(-time.Hour).Unix())
				future := float64(now.Add(time.Hour).Unix())
				hs256 := func(c map[string]any) string { return secSign(t, "HS256", sha256.New, key, c) }
				// pad grows a valid token to n bytes with an extra claim.
				pad := func(n int) string {
					short := hs256(secWith(base, map[string]any{"pad": ""}))
					return hs256(secWith(base, map[string]any{"pad": strings.Repeat("x", (n-len(short))*3/4)}))
				}
				bClaims := secClaims(t, b.access)
				cases := []struct {
					name  string
					token string
					code  string // "" means accepted
				}{
					{"control: HS256 with the right key", hs256(base), ""},
					{"control: just under 4096 bytes", pad(4000), ""},
					{"alg none, empty signature", secSign(t, "none", nil, nil, base), "token_invalid"},
					{"alg None, empty signature", secSign(t, "None", nil, nil, base), "token_invalid"},
					{"alg none with the real signature", secSign(t, "none", nil, nil, base) + strings.Split(a.access, ".")[2], "token_invalid"},
					{"HS384 with the right key", secSign(t, "HS384", sha512.New384, key, base), "token_invalid"},
					{"HS512 with the right key", secSign(t, "HS512", sha512.New, key, base), "token_invalid"},
					{"RS256 header over an HMAC signature", secSign(t, "RS256", sha256.New, key, base), "token_invalid"},
					{"B's token with A's sub", secSplice(t, b.access, secWith(bClaims, map[string]any{"sub": aID})), "token_invalid"},
					{"A's claims under B's signature", secSplice(t, b.access, base), "token_invalid"},
					{"tampered signature", secTamper(a.access), "token_invalid"},
					{"signed with another key", secSign(t, "HS256", sha256.New, []byte(strings.Repeat("k", 32)), base), "token_invalid"},
					{"wrong iss", hs256(secWith(base, map[string]any{"iss": "someone-else"})), "token_invalid"},
					{"wrong aud", hs256(secWith(base, map[string]any{"aud": []string{"someone-else"}})), "token_invalid"},
					{"no aud", hs256(secWith(base, map[string]any{"aud": nil})), "token_invalid"},
					{"no exp", hs256(secWith(base, map[string]any{"exp": nil})), "token_invalid"},
					{"no sid", hs256(secWith(base, map[string]any{"sid": nil})), "token_invalid"},
					{"sub not a number", hs256(secWith(base, map[string]any{"sub": "admin"})), "token_invalid"},
					{"sub 0", hs256(secWith(base, map[string]any{"sub": "0"})), "token_invalid"},
					{"iat in the future", hs256(secWith(base, map[string]any{"iat": future, "exp": future + 900})), "token_invalid"},
					{"expired", hs256(secWith(base, map[string]any{"iat": past - 900, "exp": past})), "token_expired"},
					// An expired token with a bad signature is a bad token:
					// "expired" would confirm the signature.
					{"expired, bad signature", secTamper(hs256(secWith(base, map[string]any{"iat": past - 900, "exp": past}))), "token_invalid"},
					{"over 4096 bytes, validly signed", pad(4200), "token_invalid"},
					{"refresh token as access token", a.refresh, "token_invalid"},
					{"not a JWT", "not-a-token", "token_invalid"},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						e := e.apiBind(t)
						r := secVerify(e, c.token)
						if c.code == "" {
							if r.Code != http.StatusOK || r.str("sub") != aID {
								t.Fatalf("got %d %s, want 200 for user %s", r.Code, r.Raw, aID)
							}
							return
						}
						apiWantErr(t, c.name, r, http.StatusUnauthorized, c.code)
						if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, `error="invalid_token"`) {
							t.Errorf("WWW-Authenticate %q, want a Bearer invalid_token challenge", got)
						}
						// The same token reaches no other endpoint either.
						apiWantErr(t, c.name+" on /me", e.send(req{method: "GET", path: "/api/v1/me", token: c.token}), http.StatusUnauthorized, c.code)
					})
				}
				if l := len(pad(4200)); l <= strategy.MaxTokenBytes {
					t.Fatalf("the oversized token has %d bytes, not over %d", l, strategy.MaxTokenBytes)
				}
				if l := len(pad(4000)); l > strategy.MaxTokenBytes {
					t.Fatalf("the control token has %d bytes, over %d", l, strategy.MaxTokenBytes)
				}
			})
		}
	})
}

// TestTokenExpiry: a token verifies until its exp and answers
// token_expired from then on, under the clock the server runs on.
func TestTokenExpiry(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"stateless", "password_key"} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, driver, name)
				e.register(email(1))
				s := e.login(email(1), "laptop")
				e.clock.Advance(e.cfg.JWT.AccessTTL - time.Second)
				e.wantVerify("one second before exp", s.access, http.StatusOK)
				e.clock.Advance(2 * time.Second)
				apiWantErr(t, "one second after exp", secVerify(e, s.access), http.StatusUnauthorized, "token_expired")
				// The refresh token outlives it: the client gets a new one.
				r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": s.refresh}})
				e.wantVerify("the refreshed token", r.str("access_token"), http.StatusOK)
			})
		}
	})
}

// TestUnknownUserLooksLikeBadSignature: under password_key, a token of a
// deleted account or of an id that never existed gets exactly the answer of
// a token with a bad signature, so that tokens do not probe for accounts.
func TestUnknownUserLooksLikeBadSignature(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		e.register(email(1))
		a := e.login(email(1), "a")
		e.register(email(2))
		d := e.login(email(2), "d")
		e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: d.access, body: map[string]string{"password": password}})

		badSig := secVerify(e, secTamper(a.access))
		apiWantErr(t, "bad signature", badSig, http.StatusUnauthorized, "token_invalid")
		deleted := secVerify(e, d.access)
		secWantSame(t, "deleted account vs bad signature", deleted, badSig)
		unknown := secVerify(e, secSign(t, "HS256", sha256.New, []byte(strings.Repeat("k", 32)),
			secWith(secClaims(t, a.access), map[string]any{"sub": "987654321"})))
		secWantSame(t, "unknown id vs bad signature", unknown, badSig)
		// The deleted account's token still carries a good signature under
		// the key it had: only the missing account can be why it fails.
		apiWantErr(t, "me of the deleted account", e.send(req{method: "GET", path: "/api/v1/me", token: d.access}), http.StatusUnauthorized, "token_invalid")
	})
}

// TestAuthorizationHeader: only "Bearer <token>" authenticates (the scheme
// is case-insensitive, RFC 7235); no header is token_missing, anything else
// token_invalid, both with a Bearer challenge.
func TestAuthorizationHeader(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		e.register(email(1))
		s := e.login(email(1), "laptop")
		cases := []struct {
			name   string
			header string // "" sends none
			status int
			code   string
		}{
			{"control: Bearer", "Bearer " + s.access, http.StatusOK, ""},
			{"control: lower-case scheme", "bearer " + s.access, http.StatusOK, ""},
			{"no header", "", http.StatusUnauthorized, "token_missing"},
			{"Basic", "Basic dXNlcjpwYXNzd29yZA==", http.StatusUnauthorized, "token_invalid"},
			{"Token scheme", "Token " + s.access, http.StatusUnauthorized, "token_invalid"},
			{"no scheme", s.access, http.StatusUnauthorized, "token_invalid"},
			{"scheme only", "Bearer", http.StatusUnauthorized, "token_invalid"},
			{"empty token", "Bearer ", http.StatusUnauthorized, "token_invalid"},
			{"two tokens", "Bearer " + s.access + " " + s.access, http.StatusUnauthorized, "token_invalid"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := e.apiBind(t)
				rq := req{method: "GET", path: "/api/v1/auth/verify"}
				if c.header != "" {
					rq.header = map[string]string{"Authorization": c.header}
				}
				r := e.send(rq)
				if c.code == "" {
					if r.Code != c.status {
						t.Fatalf("got %d %s, want %d", r.Code, r.Raw, c.status)
					}
					return
				}
				apiWantErr(t, c.name, r, c.status, c.code)
				if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
				}
			})
		}
	})
}

// TestLoginFailuresAreIndistinguishable: an unknown email, a wrong
// password and an email that is not even an address get byte-identical
// answers, so that login does not tell which accounts exist.
func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		e.register(email(1))
		wrongPW := apiLogin(e, email(1), "wrong password")
		apiWantErr(t, "wrong password", wrongPW, http.StatusUnauthorized, "invalid_credentials")
		secWantSame(t, "unknown email vs wrong password", apiLogin(e, email(2), "wrong password"), wrongPW)
		secWantSame(t, "unknown email with the right password vs wrong password", apiLogin(e, email(2), password), wrongPW)
		secWantSame(t, "malformed email vs wrong password", apiLogin(e, "not-an-email", password), wrongPW)
		if n := e.count(&models.RefreshToken{}, "1 = 1"); n != 0 {
			t.Fatalf("%d refresh tokens after failed logins, want 0", n)
		}
	})
}

// secRaw serves one request without a testing.T, for use from goroutines.
func secRaw(h http.Handler, method, path, body string) (int, []byte) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = "192.0.2.10:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

// TestConcurrentRegistration: of 50 simultaneous registrations of one
// address, in different spellings, exactly one succeeds and every other
// answers 409 email_taken (never 500 or 503): the unique index decides.
func TestConcurrentRegistration(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		const n = 50
		spellings := []string{"race@example.com", " RACE@example.com", "Race@Example.Com\t"}
		type answer struct {
			code int
			body []byte
		}
		answers := make([]answer, n)
		together(n, func(i int) {
			body := fmt.Sprintf(`{"email":%q,"password":%q}`, spellings[i%len(spellings)], password)
			answers[i].code, answers[i].body = secRaw(e.handler, "POST", "/api/v1/auth/register", body)
		})
		created := 0
		for i, a := range answers {
			switch a.code {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
				var body struct {
					Error struct{ Code string } `json:"error"`
				}
				if err := json.Unmarshal(a.body, &body); err != nil || body.Error.Code != "email_taken" {
					t.Errorf("registration %d: 409 %s, want email_taken", i, a.body)
				}
			default:
				t.Errorf("registration %d: %d %s, want 201 or 409", i, a.code, a.body)
			}
		}
		if created != 1 {
			t.Fatalf("%d registrations succeeded, want exactly 1", created)
		}
		if got := e.count(&models.User{}, "1 = 1"); got != 1 {
			t.Fatalf("%d users, want 1", got)
		}
		apiWantLogin(e, "login of the one account", "race@example.com", password)
	})
}

// TestFailClosed: with the database gone, password_key cannot decide a
// token, so it must not accept it: /me, login, registration and reset
// answer 503 service_unavailable (never 200, never a 401 that would make
// clients drop their tokens) and /readyz reports the database down.
// Verification may answer from the cache only while the cache is trusted:
// once no outbox read has succeeded for cache.max_staleness it answers 503
// too.
func TestFailClosed(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) { c.Cache.MaxStaleness = 200 * time.Millisecond })
		e.register(email(1))
		s := e.login(email(1), "laptop")
		e.wantVerify("before the database closes", s.access, http.StatusOK)
		e.do(http.StatusOK, req{method: "GET", path: "/readyz"})

		sqlDB, err := e.db.DB()
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlDB.Close(); err != nil {
			t.Fatal(err)
		}
		closed := time.Now()
		cases := []struct {
			name string
			r    req
		}{
			{"me", req{method: "GET", path: "/api/v1/me", token: s.access}},
			{"login", req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}}},
			{"register", req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": email(2), "password": password}}},
			{"password reset", req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				apiWantErr(t, c.name, e.apiBind(t).send(c.r), http.StatusServiceUnavailable, "service_unavailable")
			})
		}
		r := e.send(req{method: "GET", path: "/readyz"})
		if db, _ := r.Body["components"].(map[string]any); r.Code != http.StatusServiceUnavailable || db["database"] != "down" {
			t.Fatalf("readyz with the database closed: %d %s, want 503 with components.database down", r.Code, r.Raw)
		}
		// Verification: 200 from the cache at first, then 503 once the
		// bound has passed; never anything else, never 200 after the bound.
		for {
			r := e.send(req{method: "GET", path: "/api/v1/auth/verify", token: s.access})
			since := time.Since(closed)
			if r.Code == http.StatusServiceUnavailable {
				apiWantErr(t, "verify after the bound", r, http.StatusServiceUnavailable, "service_unavailable")
				break
			}
			if r.Code != http.StatusOK || since > e.cfg.Cache.MaxStaleness+2*time.Second {
				t.Fatalf("verify %s after the database closed: %d %s, want 200 within the bound and then 503", since, r.Code, r.Raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for range 3 {
			if r := e.send(req{method: "GET", path: "/api/v1/auth/verify", token: s.access}); r.Code != http.StatusServiceUnavailable {
				t.Fatalf("verify after the bound: %d %s, want 503", r.Code, r.Raw)
			}
		}
		// Liveness is not readiness: the process itself is fine.
		e.do(http.StatusOK, req{method: "GET", path: "/healthz"})
	})
}
