package remoteauth_test

// Every test that needs an auth server runs the real binary
// (internal/binarytest), on SQLite and, with AUTH_TEST_MYSQL_DSN, MySQL.
// Only answers the real server cannot be made to give (garbage, redirects,
// oversized bodies) come from a fake one.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/internal/clock"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/remoteauth"
)

const password = "correct horse battery"

// onDrivers runs fn on every test database.
func onDrivers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) { fn(t, driver) })
	}
}

func startAuth(t *testing.T, driver, strategy string) *binarytest.Server {
	t.Helper()
	return binarytest.Start(t, binarytest.Options{Driver: driver, Env: map[string]string{"AUTH_STRATEGY": strategy}})
}

// user registers and logs in one account, returning its id and tokens.
func user(t *testing.T, srv *binarytest.Server, email string) (uint64, binarytest.Tokens) {
	t.Helper()
	id, err := strconv.ParseUint(srv.Register(t, email, password), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id, srv.Login(t, email, password)
}

func newVerifier(t *testing.T, c remoteauth.Config) *remoteauth.Verifier {
	t.Helper()
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v, err := remoteauth.New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// counter counts the requests that reach the auth server.
type counter struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestVerify(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		srv := startAuth(t, driver, "single_device")
		uid, tok := user(t, srv, "ann@example.com")
		v := newVerifier(t, remoteauth.Config{URL: srv.URL})

		c, err := v.Verify(context.Background(), tok.Access)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.UserID != uid || c.Claims.Subject != strconv.FormatUint(uid, 10) {
			t.Errorf("UserID %d, Subject %q, want %d", c.UserID, c.Claims.Subject, uid)
		}
		if c.LoginID == "" || c.Claims.ID == "" {
			t.Errorf("LoginID %q, ID %q: want both set", c.LoginID, c.Claims.ID)
		}
		if c.Claims.Strategy != "single_device" || c.Claims.Issuer != "authserver" || !slices.Equal(c.Claims.Audience, []string{"authserver"}) {
			t.Errorf("claims %+v: want strategy single_device, iss and aud authserver", c.Claims)
		}
		if now := time.Now(); !c.Claims.ExpiresAt.After(now) || c.Claims.IssuedAt.After(now.Add(time.Second)) {
			t.Errorf("exp %s, iat %s: want exp in the future and iat not", c.Claims.ExpiresAt, c.Claims.IssuedAt)
		}

		// Every one of these is a plain no, never "unavailable": a
		// malformed token must not turn into a 503, and a token that
		// cannot go in a header is refused before it is sent.
		invalid := []struct{ name, token string }{
			{"empty", ""},
			{"garbage", "garbage"},
			{"bad signature", tok.Access[:len(tok.Access)-2] + "xx"},
			{"space", "a b"},
			{"header injection", "abc\r\nX-Auth-User-Id: 1"},
			{"non-ASCII", "tökén"},
			{"only padding", "=="},
			{"too long", strings.Repeat("a", 5000)},
		}
		for _, tc := range invalid {
			t.Run(tc.name, func(t *testing.T) {
				c, err := v.Verify(context.Background(), tc.token)
				if !errors.Is(err, remoteauth.ErrInvalidToken) || errors.Is(err, remoteauth.ErrUnavailable) || c != nil {
					t.Fatalf("Verify: %v, %v; want ErrInvalidToken", c, err)
				}
			})
		}
	})
}

// TestRevoked: a token the auth server took back is refused at once, under
// the strategies that revoke an access token immediately.
func TestRevoked(t *testing.T) {
	cases := []struct {
		strategy string
		revoke   func(t *testing.T, srv *binarytest.Server, tok binarytest.Tokens)
	}{
		{"single_device", func(t *testing.T, srv *binarytest.Server, tok binarytest.Tokens) {
			if r := srv.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil); r.Status != http.StatusNoContent {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
		}},
		{"password_key", func(t *testing.T, srv *binarytest.Server, tok binarytest.Tokens) {
			r := srv.Do(t, http.MethodPut, "/api/v1/me/password", tok.Access,
				map[string]string{"current_password": password, "new_password": password + "!"})
			if r.Status != http.StatusOK {
				t.Fatalf("password change: %d %s", r.Status, r.Body)
			}
		}},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, tc := range cases {
			t.Run(tc.strategy, func(t *testing.T) {
				srv := startAuth(t, driver, tc.strategy)
				_, tok := user(t, srv, "ann@example.com")
				v := newVerifier(t, remoteauth.Config{URL: srv.URL})
				h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))

				if _, err := v.Verify(context.Background(), tok.Access); err != nil {
					t.Fatalf("before: Verify: %v", err)
				}
				tc.revoke(t, srv, tok)
				if _, err := v.Verify(context.Background(), tok.Access); !errors.Is(err, remoteauth.ErrInvalidToken) {
					t.Fatalf("after: Verify: %v, want ErrInvalidToken", err)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, bearer(tok.Access))
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("after: middleware answered %d, want 401", w.Code)
				}
			})
		}
	})
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/notes", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// resource is a protected handler that records what reached it.
type resource struct {
	mu     sync.Mutex
	calls  int
	caller *remoteauth.Caller
}

func (rs *resource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.calls++
	rs.caller, _ = remoteauth.FromContext(r.Context())
	w.WriteHeader(http.StatusOK)
}

func TestMiddleware(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		srv := startAuth(t, driver, "single_device")
		uid, tok := user(t, srv, "ann@example.com")
		_, revoked := user(t, srv, "bob@example.com")
		srv.Do(t, http.MethodPost, "/api/v1/auth/logout", revoked.Access, nil)
		v := newVerifier(t, remoteauth.Config{URL: srv.URL})

		cases := []struct {
			name      string
			auth      string
			status    int
			challenge string
			code      string
		}{
			{"valid", "Bearer " + tok.Access, http.StatusOK, "", ""},
			{"scheme in lower case", "bearer " + tok.Access, http.StatusOK, "", ""},
			{"missing", "", http.StatusUnauthorized, `Bearer`, "token_missing"},
			{"other scheme", "Basic " + tok.Access, http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid"},
			{"no token", "Bearer", http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid"},
			{"garbage", "Bearer garbage", http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid"},
			{"revoked", "Bearer " + revoked.Access, http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rs := &resource{}
				r := httptest.NewRequest(http.MethodPost, "/notes", strings.NewReader("{}"))
				if tc.auth != "" {
					r.Header.Set("Authorization", tc.auth)
				}
				w := httptest.NewRecorder()
				v.Middleware(rs).ServeHTTP(w, r)
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
				}
				if tc.status == http.StatusOK {
					if rs.calls != 1 || rs.caller == nil || rs.caller.UserID != uid {
						t.Fatalf("handler: %d calls, caller %+v; want 1 call by user %d", rs.calls, rs.caller, uid)
					}
					return
				}
				if rs.calls != 0 {
					t.Fatalf("a %d reached the handler", w.Code)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", got)
				}
				if got := errorCode(t, w.Body.Bytes()); got != tc.code {
					t.Errorf("error code %q, want %q", got, tc.code)
				}
			})
		}
	})
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an error body (%v): %s", err, body)
	}
	return e.Error.Code
}

// TestFailClosed: when the auth server hangs or is gone, a request is
// refused with 503, never let through, and the log says why without the
// token.
func TestFailClosed(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		srv := startAuth(t, driver, "password_key")
		_, tok := user(t, srv, "ann@example.com")
		var log bytes.Buffer
		var logMu sync.Mutex
		v := newVerifier(t, remoteauth.Config{
			URL:     srv.URL,
			Timeout: 300 * time.Millisecond,
			Log:     slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &logMu}, nil)),
		})
		rs := &resource{}
		h := v.Middleware(rs)
		if _, err := v.Verify(context.Background(), tok.Access); err != nil {
			t.Fatalf("Verify while up: %v", err)
		}

		wantUnavailable := func(t *testing.T) error {
			t.Helper()
			errc := make(chan error, 1)
			go func() {
				_, err := v.Verify(context.Background(), tok.Access)
				errc <- err
			}()
			var err error
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				t.Fatal("Verify did not return: the timeout is not applied")
			}
			if !errors.Is(err, remoteauth.ErrUnavailable) || errors.Is(err, remoteauth.ErrInvalidToken) {
				t.Fatalf("Verify: %v, want ErrUnavailable", err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, bearer(tok.Access))
			if w.Code != http.StatusServiceUnavailable || rs.calls != 0 {
				t.Fatalf("middleware: %d with %d handler calls, want 503 and none", w.Code, rs.calls)
			}
			if got := errorCode(t, w.Body.Bytes()); got != "service_unavailable" {
				t.Errorf("error code %q, want service_unavailable", got)
			}
			return err
		}

		t.Run("hangs", func(t *testing.T) {
			// A stopped process: the kernel still accepts connections,
			// nothing answers.
			srv.Pause(t)
			err := wantUnavailable(t)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v: want a timeout", err)
			}
			srv.Resume(t)
			if _, err := v.Verify(context.Background(), tok.Access); err != nil {
				t.Fatalf("Verify once the server answers again: %v", err)
			}
		})
		t.Run("gone", func(t *testing.T) {
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			wantUnavailable(t)
		})

		logMu.Lock()
		defer logMu.Unlock()
		if !strings.Contains(log.String(), "could not verify") {
			t.Errorf("the log does not record the refusals:\n%s", log.String())
		}
		if strings.Contains(log.String(), tok.Access) {
			t.Errorf("the log holds the token:\n%s", log.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestBadAnswers: anything but a well-formed 200 or a 401 is not an
// answer, and fails closed. These come from a fake server: the real one
// cannot be made to send them.
func TestBadAnswers(t *testing.T) {
	const good = `{"active":true,"sub":"7","exp":4102444800,"iat":1700000000,"iss":"authserver","aud":["authserver"],"jti":"j","sid":"s","token_type":"Bearer","strategy":"password_key"}`
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   error
	}{
		{"the good answer", 200, map[string]string{"X-Auth-User-Id": "7"}, good, nil},
		{"aud as a string", 200, nil, strings.Replace(good, `["authserver"]`, `"authserver"`, 1), nil},
		{"401", 401, nil, `{"error":{"code":"token_revoked","message":"m"}}`, remoteauth.ErrInvalidToken},
		{"inactive", 200, nil, `{"active":false}`, remoteauth.ErrInvalidToken},
		{"not JSON", 200, nil, `<html>ok</html>`, remoteauth.ErrUnavailable},
		{"empty", 200, nil, ``, remoteauth.ErrUnavailable},
		{"no active", 200, nil, `{"sub":"7","exp":4102444800}`, remoteauth.ErrUnavailable},
		{"no sub", 200, nil, `{"active":true,"exp":4102444800}`, remoteauth.ErrUnavailable},
		{"sub not a user id", 200, nil, strings.Replace(good, `"sub":"7"`, `"sub":"ann"`, 1), remoteauth.ErrUnavailable},
		{"no exp", 200, nil, strings.Replace(good, `"exp":4102444800`, `"exp":0`, 1), remoteauth.ErrUnavailable},
		{"header disagrees", 200, map[string]string{"X-Auth-User-Id": "8"}, good, remoteauth.ErrUnavailable},
		{"too large", 200, nil, good[:len(good)-1] + `,"pad":"` + strings.Repeat("x", 70<<10) + `"}`, remoteauth.ErrUnavailable},
		{"redirect", 302, map[string]string{"Location": "/elsewhere"}, ``, remoteauth.ErrUnavailable},
		{"403", 403, nil, `{}`, remoteauth.ErrUnavailable},
		{"404", 404, nil, `{}`, remoteauth.ErrUnavailable},
		{"500", 500, nil, `{}`, remoteauth.ErrUnavailable},
		{"503", 503, nil, `{"error":{"code":"service_unavailable","message":"m"}}`, remoteauth.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var elsewhere atomic.Int64
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					elsewhere.Add(1)
					w.Write([]byte(good))
					return
				}
				if r.URL.Path != remoteauth.VerifyPath || r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("asked %s %s with Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer fake.Close()
			v := newVerifier(t, remoteauth.Config{URL: fake.URL})
			c, err := v.Verify(context.Background(), "tok")
			if tc.want == nil {
				if err != nil || c.UserID != 7 || !slices.Equal(c.Claims.Audience, []string{"authserver"}) {
					t.Fatalf("Verify: %+v, %v; want user 7 of audience authserver", c, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("Verify: %+v, %v; want %v", c, err, tc.want)
			}
			other := remoteauth.ErrInvalidToken
			if tc.want == remoteauth.ErrInvalidToken {
				other = remoteauth.ErrUnavailable
			}
			if errors.Is(err, other) {
				t.Fatalf("Verify: %v is also %v", err, other)
			}
			if elsewhere.Load() != 0 {
				t.Fatal("the redirect was followed")
			}
		})
	}
}

// TestCache: a valid answer is reused within the TTL, with no request,
// even after the token was revoked (that is the delay the TTL buys), and
// asked again after it, or once the token has expired, whichever is first.
func TestCache(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		srv := startAuth(t, driver, "single_device")

		t.Run("off by default", func(t *testing.T) {
			_, tok := user(t, srv, "off@example.com")
			n := &counter{base: http.DefaultTransport}
			v := newVerifier(t, remoteauth.Config{URL: srv.URL, Transport: n})
			for range 2 {
				if _, err := v.Verify(context.Background(), tok.Access); err != nil {
					t.Fatal(err)
				}
			}
			srv.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil)
			if _, err := v.Verify(context.Background(), tok.Access); !errors.Is(err, remoteauth.ErrInvalidToken) {
				t.Fatalf("after logout: %v, want ErrInvalidToken at once", err)
			}
			if n.n.Load() != 3 {
				t.Fatalf("%d requests, want 3: one per Verify", n.n.Load())
			}
		})

		t.Run("TTL", func(t *testing.T) {
			uid, tok := user(t, srv, "ttl@example.com")
			clk := clock.NewManual(time.Now())
			n := &counter{base: http.DefaultTransport}
			v := newVerifier(t, remoteauth.Config{URL: srv.URL, Transport: n, CacheTTL: 30 * time.Second, Now: clk.Now})
			want := func(what string, err error, requests int64) {
				t.Helper()
				_, got := v.Verify(context.Background(), tok.Access)
				if !errors.Is(got, err) {
					t.Fatalf("%s: Verify: %v, want %v", what, got, err)
				}
				if n.n.Load() != requests {
					t.Fatalf("%s: %d requests so far, want %d", what, n.n.Load(), requests)
				}
			}
			c, err := v.Verify(context.Background(), tok.Access)
			if err != nil || c.UserID != uid {
				t.Fatalf("Verify: %+v, %v", c, err)
			}
			c.Claims.Audience[0] = "changed by the caller"
			srv.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil)
			clk.Advance(29 * time.Second)
			cached, err := v.Verify(context.Background(), tok.Access)
			if err != nil || n.n.Load() != 1 {
				t.Fatalf("within the TTL, after logout: %v with %d requests; want the cached pass, 1 request", err, n.n.Load())
			}
			if cached.UserID != uid || cached.Claims.Audience[0] != "authserver" {
				t.Fatalf("cached caller %+v: want user %d, unchanged by what a caller did to its copy", cached, uid)
			}
			clk.Advance(time.Second)
			want("at the TTL", remoteauth.ErrInvalidToken, 2)
			want("a refusal is not cached", remoteauth.ErrInvalidToken, 3)
		})

		t.Run("capped by exp", func(t *testing.T) {
			_, tok := user(t, srv, "exp@example.com")
			clk := clock.NewManual(time.Now())
			n := &counter{base: http.DefaultTransport}
			v := newVerifier(t, remoteauth.Config{URL: srv.URL, Transport: n, CacheTTL: time.Hour, Now: clk.Now})
			c, err := v.Verify(context.Background(), tok.Access)
			if err != nil {
				t.Fatal(err)
			}
			srv.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil)
			// Just before exp the entry serves; at exp it must not, though
			// the TTL has most of an hour left.
			clk.Set(c.Claims.ExpiresAt.Add(-time.Second))
			if _, err := v.Verify(context.Background(), tok.Access); err != nil || n.n.Load() != 1 {
				t.Fatalf("before exp: %v with %d requests, want the cached pass", err, n.n.Load())
			}
			clk.Set(c.Claims.ExpiresAt)
			if _, err := v.Verify(context.Background(), tok.Access); !errors.Is(err, remoteauth.ErrInvalidToken) || n.n.Load() != 2 {
				t.Fatalf("at exp: %v with %d requests, want the server's refusal", err, n.n.Load())
			}
		})

		t.Run("bounded", func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			n := &counter{base: http.DefaultTransport}
			v := newVerifier(t, remoteauth.Config{URL: srv.URL, Transport: n, CacheTTL: time.Minute, CacheSize: 2, Now: clk.Now})
			var toks []string
			for i := range 3 {
				_, tok := user(t, srv, "bound"+strconv.Itoa(i)+"@example.com")
				toks = append(toks, tok.Access)
			}
			verify := func(i int, requests int64) {
				t.Helper()
				if _, err := v.Verify(context.Background(), toks[i]); err != nil {
					t.Fatal(err)
				}
				if n.n.Load() != requests {
					t.Fatalf("token %d: %d requests so far, want %d", i, n.n.Load(), requests)
				}
			}
			verify(0, 1)
			verify(1, 2)
			verify(0, 2) // 0 is now the most recently used
			verify(2, 3) // evicts 1, the least recently used
			verify(0, 3)
			verify(2, 3)
			verify(1, 4)
		})

		t.Run("concurrent", func(t *testing.T) {
			_, tok := user(t, srv, "many@example.com")
			v := newVerifier(t, remoteauth.Config{URL: srv.URL, CacheTTL: time.Minute, CacheSize: 4})
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for range 5 {
						if _, err := v.Verify(context.Background(), tok.Access); err != nil {
							t.Errorf("Verify: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	})
}

func TestNew(t *testing.T) {
	bad := []struct {
		name string
		c    remoteauth.Config
	}{
		{"no URL", remoteauth.Config{}},
		{"not a URL", remoteauth.Config{URL: "http://[::1"}},
		{"relative", remoteauth.Config{URL: "/api"}},
		{"other scheme", remoteauth.Config{URL: "ftp://auth"}},
		{"no host", remoteauth.Config{URL: "http://"}},
		{"query", remoteauth.Config{URL: "http://auth/?x=1"}},
		{"user info", remoteauth.Config{URL: "http://u:p@auth"}},
		{"negative timeout", remoteauth.Config{URL: "http://auth", Timeout: -1}},
		{"negative conns", remoteauth.Config{URL: "http://auth", MaxConns: -1}},
		{"negative TTL", remoteauth.Config{URL: "http://auth", CacheTTL: -time.Second}},
		{"negative size", remoteauth.Config{URL: "http://auth", CacheSize: -1}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := remoteauth.New(tc.c); err == nil {
				t.Fatalf("New accepted %+v: %v", tc.c, v)
			}
		})
	}
	// A base URL with a path prefix (behind a proxy) keeps it.
	var asked string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.Path
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer fake.Close()
	v := newVerifier(t, remoteauth.Config{URL: fake.URL + "/auth/"})
	if _, err := v.Verify(context.Background(), "tok"); !errors.Is(err, remoteauth.ErrInvalidToken) {
		t.Fatal(err)
	}
	if asked != "/auth"+remoteauth.VerifyPath {
		t.Fatalf("asked %q, want /auth%s", asked, remoteauth.VerifyPath)
	}
}
