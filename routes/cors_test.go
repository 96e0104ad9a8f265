package routes_test

// CORS (cors.allowed_origins): exactly the listed origins, with
// credentials; never a reflected origin; preflights answered on every
// path, verify's OPTIONS included, while a proxy's OPTIONS check stays a
// verification.

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/config"
)

const appOrigin = "https://app.example.com"

func withCORS(c *config.Config) {
	c.CORS.AllowedOrigins = []string{appOrigin, "https://admin.example.com"}
}

// corsHeaders are every Access-Control-* header an answer may carry.
var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers",
}

// wantNoCORS fails if the answer carries any Access-Control-* header.
func wantNoCORS(t testing.TB, what string, r *resp) {
	t.Helper()
	for _, h := range corsHeaders {
		if v := r.Header.Values(h); len(v) > 0 {
			t.Errorf("%s: %s: %q, want none", what, h, v)
		}
	}
}

func varies(r *resp, h string) bool {
	for _, v := range r.Header.Values("Vary") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), h) {
				return true
			}
		}
	}
	return false
}

func preflight(path, origin, method string) req {
	return req{method: "OPTIONS", path: path, header: map[string]string{
		"Origin": origin, "Access-Control-Request-Method": method,
		"Access-Control-Request-Headers": "authorization, content-type",
	}}
}

func TestCORSOff(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key")
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/strategy", header: map[string]string{"Origin": appOrigin}})
	wantNoCORS(t, "a request with an Origin", r)
	if varies(r, "Origin") {
		t.Errorf("Vary: Origin without CORS configured")
	}
	// No CORS: a preflight is an OPTIONS like any other.
	wantNoCORS(t, "a preflight to login", e.do(http.StatusNotFound, preflight("/api/v1/auth/login", appOrigin, "POST")))
	wantNoCORS(t, "a preflight to verify", e.do(http.StatusUnauthorized, preflight("/api/v1/auth/verify", appOrigin, "GET")))
}

func TestCORSAllowed(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "single_device", withCORS)
		e.register(email(1))
		s := e.login(email(1), "laptop")
		origin := map[string]string{"Origin": appOrigin}

		t.Run("simple requests", func(t *testing.T) {
			e := e.apiBind(t)
			for _, r := range []*resp{
				e.do(http.StatusOK, req{method: "GET", path: "/api/v1/me", token: s.access, header: origin}),
				// Errors too: the app must be able to read them.
				e.do(http.StatusUnauthorized, req{method: "GET", path: "/api/v1/me", header: origin}),
				e.do(http.StatusOK, req{method: "GET", path: "/api/v1/auth/verify", token: s.access, header: origin}),
			} {
				if got := r.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{appOrigin}) {
					t.Errorf("Access-Control-Allow-Origin %q, want exactly %s", got, appOrigin)
				}
				if r.Header.Get("Access-Control-Allow-Credentials") != "true" {
					t.Errorf("no Access-Control-Allow-Credentials: true")
				}
				if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
					t.Errorf("X-Request-Id is not exposed: %q", r.Header.Get("Access-Control-Expose-Headers"))
				}
				if !varies(r, "Origin") {
					t.Errorf("no Vary: Origin")
				}
			}
		})

		t.Run("preflights", func(t *testing.T) {
			e := e.apiBind(t)
			for _, p := range []struct{ path, method string }{
				{"/api/v1/auth/login", "POST"}, {"/api/v1/me/password", "PUT"}, {"/api/v1/me", "DELETE"},
				{"/api/v1/sessions/abc", "DELETE"}, {"/api/v1/auth/verify", "GET"},
			} {
				r := e.do(http.StatusNoContent, preflight(p.path, appOrigin, p.method))
				if len(r.Raw) != 0 {
					t.Errorf("%s: a preflight answer with a body: %s", p.path, r.Raw)
				}
				want := map[string]string{
					"Access-Control-Allow-Origin":      appOrigin,
					"Access-Control-Allow-Credentials": "true",
					"Access-Control-Max-Age":           "600",
				}
				for h, v := range want {
					if got := r.Header.Get(h); got != v {
						t.Errorf("%s: %s %q, want %q", p.path, h, got, v)
					}
				}
				if m := r.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, p.method) {
					t.Errorf("%s: Access-Control-Allow-Methods %q lacks %s", p.path, m, p.method)
				}
				allowed := r.Header.Get("Access-Control-Allow-Headers")
				for _, h := range []string{"Authorization", "Content-Type", "X-Requested-With"} {
					if !strings.Contains(allowed, h) {
						t.Errorf("%s: Access-Control-Allow-Headers %q lacks %s", p.path, allowed, h)
					}
				}
				if !varies(r, "Origin") || !varies(r, "Access-Control-Request-Method") {
					t.Errorf("%s: Vary %q, want Origin and Access-Control-Request-Method", p.path, r.Header.Values("Vary"))
				}
				if r.Header.Get("X-Auth-User-Id") != "" {
					t.Errorf("%s: a preflight answer with X-Auth-User-Id", p.path)
				}
			}
		})

		t.Run("verify's OPTIONS from a proxy stays a verification", func(t *testing.T) {
			e := e.apiBind(t)
			r := e.do(http.StatusOK, req{method: "OPTIONS", path: "/api/v1/auth/verify", token: s.access})
			if r.Header.Get("X-Auth-User-Id") == "" || r.Body["active"] != true {
				t.Errorf("OPTIONS verify with a valid token: %s, want the verification", r.Raw)
			}
			e.do(http.StatusUnauthorized, req{method: "OPTIONS", path: "/api/v1/auth/verify"})
			// An Origin alone does not make a preflight.
			e.do(http.StatusUnauthorized, req{method: "OPTIONS", path: "/api/v1/auth/verify", header: origin})
			// Nor does Access-Control-Request-Method alone.
			e.do(http.StatusUnauthorized, req{method: "OPTIONS", path: "/api/v1/auth/verify", header: map[string]string{"Access-Control-Request-Method": "GET"}})
		})

		t.Run("a cookie refresh from the app", func(t *testing.T) {
			e := e.apiBind(t)
			login := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}})
			cookie := login.cookie("refresh_token")
			// X-Requested-With, which only an allowed origin may send
			// cross-origin (the preflight above allows it), passes the
			// CSRF check.
			r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", cookies: []*http.Cookie{cookie},
				header: map[string]string{"Origin": appOrigin, "X-Requested-With": "fetch"}})
			if r.Header.Get("Access-Control-Allow-Origin") != appOrigin {
				t.Errorf("the refresh answer cannot be read by the app: no Access-Control-Allow-Origin")
			}
			// Without it, a CORS origin is not a CSRF-exempt origin:
			// that is cookies.allowed_origins.
			next := r.cookie("refresh_token")
			apiWantErr(t, "cookie refresh without X-Requested-With", e.send(req{method: "POST", path: "/api/v1/auth/refresh",
				cookies: []*http.Cookie{next}, header: origin}), http.StatusForbidden, "csrf_check_failed")
		})
	})
}

// TestCORSRefused: an origin that is not listed, or one that only looks
// like a listed one, gets no CORS header, and its preflight is not
// answered as one.
func TestCORSRefused(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withCORS)
	for _, o := range []string{
		"https://evil.example.com",
		"https://app.example.com.evil.com",
		"https://evilapp.example.com",
		"http://app.example.com",
		"https://app.example.com:8443",
		"https://app.example.com/",
		"null",
		"*",
		"https://app.example.com, https://evil.example.com",
	} {
		t.Run(o, func(t *testing.T) {
			e := e.apiBind(t)
			r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/strategy", header: map[string]string{"Origin": o}})
			wantNoCORS(t, "a request", r)
			if !varies(r, "Origin") {
				t.Errorf("no Vary: Origin")
			}
			wantNoCORS(t, "a preflight to login", e.do(http.StatusNotFound, preflight("/api/v1/auth/login", o, "POST")))
			wantNoCORS(t, "a preflight to verify", e.do(http.StatusUnauthorized, preflight("/api/v1/auth/verify", o, "GET")))
		})
	}
	t.Run("two Origin headers", func(t *testing.T) {
		hr := httptest.NewRequest("GET", "/api/v1/strategy", nil)
		hr.Header["Origin"] = []string{appOrigin, "https://evil.example.com"}
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, hr)
		wantNoCORS(t, "two Origin headers", &resp{Header: w.Header()})
	})
}

// TestCORSMounted: an application that mounts the API uses srv.CORS() on
// its engine, and preflights to the API and to its own routes are
// answered.
func TestCORSMounted(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withCORS)
	r := gin.New()
	r.Use(e.srv.CORS())
	e.srv.Mount(r.Group("/api/v1"))
	r.POST("/orders", func(c *gin.Context) { c.Status(http.StatusCreated) })
	for _, path := range []string{"/api/v1/auth/login", "/orders"} {
		hr := httptest.NewRequest("OPTIONS", path, nil)
		hr.Header.Set("Origin", appOrigin)
		hr.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, hr)
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != appOrigin {
			t.Errorf("mounted, preflight to %s: %d %q, want 204 for %s", path, w.Code, w.Header().Get("Access-Control-Allow-Origin"), appOrigin)
		}
	}
}
