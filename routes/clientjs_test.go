package routes_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	jsclient "github.com/revocable/authserver/clients/js"
)

// TestClientJS: the browser client is served as published, revalidated
// by its ETag at client.js and cached for a year at its content-hashed
// path, which the unversioned answer names; an old hash is 404.
func TestClientJS(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key")
	m := jsclient.Load()
	if len(m.Source) < 1000 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(m.Hash) {
		t.Fatalf("embedded client: %d bytes, hash %q", len(m.Source), m.Hash)
	}
	versioned := "/api/v1/client/" + m.Hash + ".js"
	etag := `"` + m.Hash + `"`
	cases := []struct {
		name, path, inm string
		status          int
		cache           string
		body            bool
	}{
		{"unversioned", "/api/v1/client.js", "", http.StatusOK, "no-cache", true},
		{"unversioned, current ETag", "/api/v1/client.js", etag, http.StatusNotModified, "no-cache", false},
		{"unversioned, weak current ETag among others", "/api/v1/client.js", `"x", W/` + etag, http.StatusNotModified, "no-cache", false},
		{"unversioned, old ETag", "/api/v1/client.js", `"0123456789abcdef"`, http.StatusOK, "no-cache", true},
		{"versioned", versioned, "", http.StatusOK, "public, max-age=31536000, immutable", true},
		{"old hash", "/api/v1/client/0123456789abcdef.js", "", http.StatusNotFound, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := rtForT(e, t)
			h := map[string]string{}
			if tc.inm != "" {
				h["If-None-Match"] = tc.inm
			}
			// The body is JavaScript, not JSON: served through the handler.
			hr := httptest.NewRequest("GET", tc.path, nil)
			for k, v := range h {
				hr.Header.Set(k, v)
			}
			r := httptest.NewRecorder()
			e.handler.ServeHTTP(r, hr)
			if r.Code != tc.status {
				t.Fatalf("status %d, want %d", r.Code, tc.status)
			}
			if tc.status == http.StatusNotFound {
				return
			}
			if got := r.Header().Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if got := r.Header().Get("ETag"); got != etag {
				t.Errorf("ETag %q, want %q", got, etag)
			}
			if tc.body != bytes.Equal(r.Body.Bytes(), m.Source) {
				t.Errorf("body: %d bytes, want the module: %v", r.Body.Len(), tc.body)
			}
			if tc.body && !strings.HasPrefix(r.Header().Get("Content-Type"), "text/javascript") {
				t.Errorf("Content-Type %q", r.Header().Get("Content-Type"))
			}
			if tc.path == "/api/v1/client.js" && r.Header().Get("Link") != "<"+versioned+">; rel=canonical" {
				t.Errorf("Link %q, want the versioned path %s", r.Header().Get("Link"), versioned)
			}
		})
	}
}
