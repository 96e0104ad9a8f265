package demo_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/revocable/authserver/demo"
)

var twoTargets = []demo.Target{
	{Name: "stateless", API: "/s/stateless/api/v1"},
	{Name: "password_key", API: "/s/password_key/api/v1"},
}

func newPage(t *testing.T, targets []demo.Target) http.Handler {
	t.Helper()
	h, err := demo.Handler(targets)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHandlerServesThePageWithStrictHeaders(t *testing.T) {
	h := newPage(t, twoTargets)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/index.html", "text/html; charset=utf-8", `<link rel="stylesheet" href="style.css">`},
		{"/app.js", "text/javascript; charset=utf-8", "async function probeAll"},
		{"/style.css", "text/css; charset=utf-8", ".grid"},
		{"/demo-config.json", "application/json", `"api":"/s/password_key/api/v1"`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(h, http.MethodGet, tc.path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			assertSecurityHeaders(t, rec.Header())
		})
	}
	t.Run("HEAD has headers and no body", func(t *testing.T) {
		rec := get(h, http.MethodHead, "/app.js")
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
			t.Fatalf("HEAD: %d, %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
		}
	})
	for _, tc := range []struct {
		name, method, path string
		status             int
	}{
		{"unknown file", http.MethodGet, "/secret.txt", http.StatusNotFound},
		{"directory walk", http.MethodGet, "/../demo.go", http.StatusNotFound},
		{"embedded dir itself", http.MethodGet, "/static/app.js", http.StatusNotFound},
		{"POST", http.MethodPost, "/", http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, "/app.js", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(h, tc.method, tc.path)
			if rec.Code != tc.status {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			}
			assertSecurityHeaders(t, rec.Header())
		})
	}
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
			"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestHandlerConfigListsTheTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []demo.Target
	}{
		{"every strategy side by side", twoTargets},
		{"one strategy on a normal server", []demo.Target{{Name: "session_table", API: "/api/v1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(newPage(t, tc.targets), http.MethodGet, "/demo-config.json")
			var got struct{ Targets []demo.Target }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Targets, tc.targets) {
				t.Errorf("targets %v, want %v", got.Targets, tc.targets)
			}
		})
	}
}

func TestHandlerRejectsBadTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []demo.Target
	}{
		{"none", nil},
		{"no name", []demo.Target{{API: "/api/v1"}}},
		{"relative API", []demo.Target{{Name: "stateless", API: "api/v1"}}},
		{"trailing slash", []demo.Target{{Name: "stateless", API: "/api/v1/"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := demo.Handler(tc.targets); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPageHasNoInlineCodeOrExternalResources checks index.html with an
// HTML parser: the CSP forbids inline scripts, inline styles and event
// handler attributes, and the page must load nothing from elsewhere.
func TestPageHasNoInlineCodeOrExternalResources(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(readStatic(t, "index.html")))
	if err != nil {
		t.Fatal(err)
	}
	var scripts, sheets int
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script":
			scripts++
			if attr(n, "src") == "" || n.FirstChild != nil {
				t.Errorf("inline script: %s", render(n))
			}
		case "style":
			t.Errorf("inline <style> element")
		case "link":
			if attr(n, "rel") == "stylesheet" {
				sheets++
			}
		}
		for _, a := range n.Attr {
			name := strings.ToLower(a.Key)
			val := strings.ToLower(strings.TrimSpace(a.Val))
			switch {
			case name == "style":
				t.Errorf("<%s> has an inline style attribute", n.Data)
			case strings.HasPrefix(name, "on"):
				t.Errorf("<%s> has an event handler attribute %s", n.Data, a.Key)
			case (name == "src" || name == "href" || name == "action") &&
				(strings.Contains(val, "//") || strings.HasPrefix(val, "javascript:")):
				t.Errorf("<%s %s=%q> points elsewhere", n.Data, a.Key, a.Val)
			}
		}
	})
	if scripts != 1 || sheets != 1 {
		t.Errorf("%d scripts and %d style sheets, want one of each", scripts, sheets)
	}
}

// TestPageInputsHaveLabels checks that every form control of index.html
// has a <label for> (the browser test checks the names Chromium computes
// for what the script builds).
func TestPageInputsHaveLabels(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(readStatic(t, "index.html")))
	if err != nil {
		t.Fatal(err)
	}
	labelled := map[string]bool{}
	var inputs []*html.Node
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "label":
			if f := attr(n, "for"); f != "" {
				labelled[f] = true
			}
			// A control inside its label is labelled too.
			walk(n, func(c *html.Node) {
				if c.Type == html.ElementNode && c.Data == "input" {
					labelled[attr(c, "id")] = true
				}
			})
		case "input", "select", "textarea":
			inputs = append(inputs, n)
		}
	})
	if len(inputs) == 0 {
		t.Fatal("no form control found")
	}
	for _, in := range inputs {
		if id := attr(in, "id"); id == "" || !labelled[id] {
			t.Errorf("form control without a label: %s", render(in))
		}
	}
	if !strings.Contains(readStatic(t, "index.html"), `<html lang="en">`) {
		t.Error("the page does not declare its language")
	}
}

// TestScriptUsesOnlyElementsOfThePage catches a renamed id: every
// $("id") of app.js must exist in index.html.
func TestScriptUsesOnlyElementsOfThePage(t *testing.T) {
	page := readStatic(t, "index.html")
	js := readStatic(t, "app.js")
	ids := regexp.MustCompile(`\$\("([A-Za-z0-9_-]+)"\)`).FindAllStringSubmatch(js, -1)
	if len(ids) < 10 {
		t.Fatalf("found only %d element lookups in app.js", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(page, `id="`+m[1]+`"`) {
			t.Errorf("app.js looks up #%s, which index.html does not have", m[1])
		}
	}
}

// TestScriptNeverInsertsHTML keeps server data out of the HTML parser: the
// script builds every node with textContent.
func TestScriptNeverInsertsHTML(t *testing.T) {
	js := readStatic(t, "app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "sessionStorage", "document.cookie"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	css := readStatic(t, "style.css")
	if strings.Contains(css, "@import") || strings.Contains(css, "url(") {
		t.Error("style.css loads another resource")
	}
}

// TestEveryEmbeddedFileIsServed: a file added to static/ must be served,
// or it is dead weight in the binary.
func TestEveryEmbeddedFileIsServed(t *testing.T) {
	h := newPage(t, twoTargets)
	entries, err := fs.ReadDir(os.DirFS("static"), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if rec := get(h, http.MethodGet, "/"+e.Name()); rec.Code != http.StatusOK {
			t.Errorf("static/%s is not served: %d", e.Name(), rec.Code)
		}
	}
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func render(n *html.Node) string {
	var b strings.Builder
	_ = html.Render(&b, n)
	s := b.String()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
