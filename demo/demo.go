// Package demo is the teaching page of the project: plain HTML, CSS and
// JavaScript, embedded in the binary, that lets a person sign in a few
// simulated devices and watch which of their tokens each revocation strategy
// still accepts after logout, password change, reset or account deletion.
//
// The page works in two modes, decided by the targets it is given: every
// strategy side by side (`authserver demo`, one server per strategy under
// /s/{name}/api/v1), or the one strategy of a normal server (/api/v1).
// It only calls the public HTTP API, plus the demo-only state endpoint of
// StateHandler, which shows what the server stores for the caller.
package demo

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// static holds the page. It is read-only: embed.FS cannot be changed.
//
//go:embed static
var static embed.FS

// Target is one server the page talks to: a strategy's name and the base
// path of its API (e.g. /s/stateless/api/v1, or /api/v1 on a normal
// server). The page reads the list from demo-config.json.
type Target struct {
	Name string `json:"name"`
	API  string `json:"api"`
}

// ContentSecurityPolicy is sent with every answer of the page handler. The
// page has no inline script or style and loads nothing from elsewhere, so
// everything but its own files and its own API is refused.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one file the handler serves.
type asset struct {
	body        []byte
	contentType string
}

// page serves the embedded files and the config; nothing else.
type page struct {
	assets map[string]asset
}

// Handler serves the page at "/" of whatever it is mounted on (mount it
// with http.StripPrefix under a path such as /demo/), its script and style,
// and demo-config.json with the targets. The page refers to its files by
// relative URLs, so the prefix must end with a slash.
func Handler(targets []Target) (http.Handler, error) {
	if len(targets) == 0 {
		return nil, errors.New("demo: no targets")
	}
	for _, t := range targets {
		if t.Name == "" || !strings.HasPrefix(t.API, "/") || strings.HasSuffix(t.API, "/") {
			return nil, fmt.Errorf("demo: target %q: the name must be set and the API an absolute path without a trailing slash, got %q", t.Name, t.API)
		}
	}
	cfg, err := json.Marshal(struct {
		Targets []Target `json:"targets"`
	}{targets})
	if err != nil {
		return nil, fmt.Errorf("demo: encode config: %w", err)
	}
	p := &page{assets: map[string]asset{
		"/demo-config.json": {cfg, "application/json"},
	}}
	for name, ct := range map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"style.css":  "text/css; charset=utf-8",
	} {
		b, err := fs.ReadFile(static, "static/"+name)
		if err != nil {
			return nil, fmt.Errorf("demo: read %s: %w", name, err)
		}
		p.assets["/"+name] = asset{b, ct}
	}
	p.assets["/"] = p.assets["/index.html"]
	return p, nil
}

// SecurityHeaders are set on every answer of the page handler.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := p.assets[r.URL.Path]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body)
}
