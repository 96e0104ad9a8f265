package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revocable/authserver/config"
)

// TestSPA: the page, its module and the client are served, and the app
// route takes a token of a cookie-mode login and nothing else.
func TestSPA(t *testing.T) {
	cfg := config.Defaults()
	cfg.Database.Driver = "sqlite"
	cfg.Database.DSN = filepath.Join(t.TempDir(), "spa.db")
	cfg.Cookies.Secure = false
	cfg.Password.BcryptCost = 4
	h, srv, err := newHandler(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct{ path, want string }{
		{"/", `src="app.js"`},
		{"/app.js", `from "/api/v1/client.js"`},
		{"/api/v1/client.js", "export function createClient"},
	} {
		if code, body := get(tc.path, ""); code != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want 200 with %q", tc.path, code, tc.want)
		}
	}
	if code, _ := get("/app/hello", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /app/hello without a token: %d, want 401", code)
	}
	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Auth-Mode", "cookie")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	cred := `{"email":"ann@example.com","password":"correct horse battery"}`
	post("/api/v1/auth/register", cred).Body.Close()
	res := post("/api/v1/auth/login", cred)
	defer res.Body.Close()
	var tok map[string]any
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	if _, leaked := tok["refresh_token"]; leaked {
		t.Error("a cookie-mode login answered the refresh token in the JSON")
	}
	access, _ := tok["access_token"].(string)
	if code, body := get("/app/hello", access); code != http.StatusOK || !strings.Contains(body, `"user_id"`) {
		t.Errorf("GET /app/hello with the token: %d %s", code, body)
	}
}
