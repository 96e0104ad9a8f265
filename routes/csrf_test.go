package routes_test

// Issue 17 item 2: login CSRF and forced logout through cross-site
// text/plain forms. JSON endpoints take a body only as application/json
// (415 otherwise); login, register and refresh refuse a browser's
// cross-site request; refresh clears only a cookie it read.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
)

// TestJSONContentType: every route that takes a JSON body answers 415
// unsupported_media_type to a body of any other type, a form's types
// first, and changes nothing; application/json with parameters is fine,
// and a request without a body needs no Content-Type.
func TestJSONContentType(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key")
	e.register(email(1))
	s := e.login(email(1), "laptop")
	routes := []struct {
		method, path string
		auth         bool
		body         string
	}{
		{"POST", "/api/v1/auth/register", false, `{"email":"new@example.com","password":"` + password + `"}`},
		{"POST", "/api/v1/auth/login", false, `{"email":"` + email(1) + `","password":"` + password + `"}`},
		{"POST", "/api/v1/auth/refresh", false, `{"refresh_token":"` + s.refresh + `"}`},
		{"POST", "/api/v1/auth/password-reset", false, `{"email":"` + email(1) + `"}`},
		{"POST", "/api/v1/auth/password-reset/confirm", false, `{"token":"x","new_password":"` + password + `!"}`},
		{"PUT", "/api/v1/me/password", true, `{"current_password":"` + password + `","new_password":"` + password + `!"}`},
		{"DELETE", "/api/v1/me", true, `{"password":"` + password + `"}`},
	}
	refused := []string{
		"",
		"text/plain",
		"text/plain; charset=utf-8",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"application/jsonx",
		"text/json",
		"application/json;;",
	}
	for _, rt := range routes {
		for _, ct := range refused {
			t.Run(rt.method+" "+rt.path+" as "+ct, func(t *testing.T) {
				e := e.apiBind(t)
				users, refresh := e.count(&models.User{}, "1 = 1"), e.count(&models.RefreshToken{}, "1 = 1")
				r := req{method: rt.method, path: rt.path, body: rt.body, header: map[string]string{"Content-Type": ct}}
				if rt.auth {
					r.token = s.access
				}
				out := e.send(r)
				apiWantErr(t, ct, out, http.StatusUnsupportedMediaType, "unsupported_media_type")
				if out.cookie("refresh_token") != nil {
					t.Errorf("a refused request set the refresh cookie")
				}
				if u, rf := e.count(&models.User{}, "1 = 1"), e.count(&models.RefreshToken{}, "1 = 1"); u != users || rf != refresh {
					t.Errorf("a refused request changed the database: users %d -> %d, refresh tokens %d -> %d", users, u, refresh, rf)
				}
			})
		}
	}
	// The message says what to send.
	out := e.send(req{method: "POST", path: "/api/v1/auth/login", body: routes[1].body, header: map[string]string{"Content-Type": "text/plain"}})
	if msg := out.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "Content-Type: application/json") {
		t.Errorf("the 415 message %q does not say to send Content-Type: application/json", msg)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"} {
		t.Run("login as "+ct, func(t *testing.T) {
			e.apiBind(t).do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: routes[1].body, header: map[string]string{"Content-Type": ct}})
		})
	}
	t.Run("bodyless", func(t *testing.T) {
		e := e.apiBind(t)
		fresh := e.login(email(1), "phone")
		// A cookie refresh and a logout without a body and without
		// Content-Type.
		r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", header: map[string]string{"Content-Type": "", "X-Requested-With": "fetch"},
			cookies: []*http.Cookie{{Name: "refresh_token", Value: fresh.refresh}}})
		// A cookie refresh answers in cookie mode: the access token only.
		next := r.str("access_token")
		if next == "" {
			t.Fatalf("no access token in %s", r.Raw)
		}
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: next, header: map[string]string{"Content-Type": ""}})
	})
}

// TestCrossSiteRefused: login, register and refresh refuse a browser's
// cross-site request (Sec-Fetch-Site: cross-site, or a foreign Origin)
// with 403 csrf_check_failed and change nothing; this server's own
// origin, the configured origins and clients that are not browsers go on.
func TestCrossSiteRefused(t *testing.T) {
	const (
		corsOrigin   = "https://app.example.net"
		cookieOrigin = "https://spa.example.org"
	)
	e := newEnv(t, "sqlite", "password_key", func(c *config.Config) {
		c.CORS.AllowedOrigins = []string{corsOrigin}
		c.Cookies.AllowedOrigins = []string{cookieOrigin}
	})
	e.register(email(1))
	cases := []struct {
		name    string
		header  map[string]string
		refused bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, true},
		{"foreign origin, same-site metadata", map[string]string{"Origin": "https://sub.example.com", "Sec-Fetch-Site": "same-site"}, true},
		{"null origin", map[string]string{"Origin": "null"}, true},
		{"foreign origin on another port", map[string]string{"Origin": "http://example.com:8443"}, true},
		{"this server's origin", map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}, false},
		{"this server's origin, no metadata", map[string]string{"Origin": "http://example.com"}, false},
		{"same-origin behind a proxy that rewrites Host", map[string]string{"Origin": "https://auth.example.com", "Sec-Fetch-Site": "same-origin"}, false},
		{"cors.allowed_origins", map[string]string{"Origin": corsOrigin, "Sec-Fetch-Site": "cross-site"}, false},
		{"cookies.allowed_origins", map[string]string{"Origin": cookieOrigin, "Sec-Fetch-Site": "cross-site"}, false},
		{"not a browser", nil, false},
		{"typed in the address bar", map[string]string{"Sec-Fetch-Site": "none"}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.apiBind(t)
			users, refresh := e.count(&models.User{}, "1 = 1"), e.count(&models.RefreshToken{}, "1 = 1")
			check := func(what string, r *resp, okStatus int) {
				t.Helper()
				if c.refused {
					apiWantErr(t, what, r, http.StatusForbidden, "csrf_check_failed")
					if r.cookie("refresh_token") != nil {
						t.Errorf("%s: a refused request touched the refresh cookie", what)
					}
					return
				}
				if r.Code != okStatus {
					t.Fatalf("%s: %d %s, want %d", what, r.Code, r.Raw, okStatus)
				}
			}
			check("register", e.send(req{method: "POST", path: "/api/v1/auth/register", header: c.header,
				body: map[string]string{"email": email(100 + i), "password": password}}), http.StatusCreated)
			login := e.send(req{method: "POST", path: "/api/v1/auth/login", header: c.header,
				body: map[string]string{"email": email(1), "password": password}})
			check("login", login, http.StatusOK)
			live := e.login(email(1), "for refresh")
			check("refresh", e.send(req{method: "POST", path: "/api/v1/auth/refresh", header: c.header,
				body: map[string]string{"refresh_token": live.refresh}}), http.StatusOK)
			if c.refused {
				// Only the refresh family e.login started.
				if u, rf := e.count(&models.User{}, "1 = 1"), e.count(&models.RefreshToken{}, "1 = 1"); u != users || rf != refresh+1 {
					t.Errorf("refused requests changed the database: users %d -> %d, refresh tokens %d -> %d (want +1, the test's own login)", users, u, refresh, rf)
				}
			}
		})
	}
}

// TestRefreshKeepsUnreadCookie: a refresh whose body carries a bogus
// token (a forged cross-site form's) answers 401 and leaves the browser's
// refresh cookie alone; a dead token read from the cookie clears it.
func TestRefreshKeepsUnreadCookie(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key")
	e.register(email(1))
	s := e.login(email(1), "laptop")
	cookie := []*http.Cookie{{Name: "refresh_token", Value: s.refresh}}
	r := e.send(req{method: "POST", path: "/api/v1/auth/refresh", cookies: cookie,
		body: map[string]string{"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})
	apiWantErr(t, "a bogus body token", r, http.StatusUnauthorized, "token_invalid")
	if c := r.cookie("refresh_token"); c != nil {
		t.Fatalf("a bogus token in the body set the refresh cookie: %q", c.String())
	}
	// The cookie still works.
	r = e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", cookies: cookie, header: map[string]string{"X-Requested-With": "fetch"}})
	// The spent cookie token, presented from the cookie after the grace
	// window, is refused and cleared.
	e.clock.Advance(e.cfg.JWT.RefreshReuseGrace + 1)
	r = e.send(req{method: "POST", path: "/api/v1/auth/refresh", cookies: cookie, header: map[string]string{"X-Requested-With": "fetch"}})
	if r.Code != http.StatusUnauthorized {
		t.Fatalf("the spent cookie: %d %s, want 401", r.Code, r.Raw)
	}
	if c := r.cookie("refresh_token"); c == nil || c.Value != "" || c.MaxAge >= 0 {
		t.Fatalf("a dead token read from the cookie: want the cookie cleared, Set-Cookie %q", r.Header.Values("Set-Cookie"))
	}
}
