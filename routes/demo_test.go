package routes_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/revocable/authserver/config"
)

// TestDemoPage: a normal server serves the single-strategy demo page at
// /demo and the state endpoint only with demo.enabled; by default neither
// exists.
func TestDemoPage(t *testing.T) {
	get := func(e *env, path, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, r)
		return w
	}
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t, "sqlite", "password_key")
		e.register(email(1))
		s := e.login(email(1), "laptop")
		for _, p := range []string{"/demo/", "/api/v1/demo/state"} {
			if w := get(e, p, s.access); w.Code != http.StatusNotFound {
				t.Errorf("GET %s without demo.enabled: %d, want 404", p, w.Code)
			}
		}
	})
	t.Run("enabled", func(t *testing.T) {
		e := newEnv(t, "sqlite", "multi_device", func(c *config.Config) { c.Demo.Enabled = true })
		e.register(email(1))
		s := e.login(email(1), "laptop")
		w := get(e, "/demo/", "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "<html") {
			t.Fatalf("GET /demo/: %d %.200s", w.Code, w.Body.String())
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("demo page CSP %q, want a strict one", csp)
		}
		if w := get(e, "/demo/demo-config.json", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"/api/v1"`) {
			t.Errorf("demo config: %d %s, want the single strategy at /api/v1", w.Code, w.Body.String())
		}
		if w := get(e, "/api/v1/demo/state", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("state without a token: %d, want 401", w.Code)
		}
		w = get(e, "/api/v1/demo/state", s.access)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), s.loginID) {
			t.Fatalf("state: %d %.300s, want the caller's device %s", w.Code, w.Body.String(), s.loginID)
		}
	})
}
