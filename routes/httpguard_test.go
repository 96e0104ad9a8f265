package routes_test

// Issue 17 items 4, 6 and 8: a deadline for every request body, on every
// route; RFC 6749 client authentication at introspection; /readyz without
// counters.

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
)

// TestBodyDeadline: over a real listener, a request that announces a body
// and never sends it has its connection answered and closed within
// server.body_timeout, on a route that never reads its body (verify:
// net/http would otherwise drain the body after the handler with no
// deadline) and on one that does (login). A bodyless request that comes
// later on a kept-alive connection is not cut by the deadline of an
// earlier one.
func TestBodyDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnv(t, "sqlite", "password_key", func(c *config.Config) { c.Server.BodyTimeout = timeout })
	e.register(email(1))
	s := e.login(email(1), "laptop")
	ts := httptest.NewServer(e.handler)
	t.Cleanup(ts.Close)
	addr := strings.TrimPrefix(ts.URL, "http://")

	for _, c := range []struct{ name, head string }{
		{"verify, Content-Length 200000, no bytes", "POST /api/v1/auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.access + "\r\nContent-Length: 200000\r\n\r\n"},
		{"verify, chunked, no chunk", "POST /api/v1/auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.access + "\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"login, half a body", "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email\":"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, c.head); err != nil {
				t.Fatal(err)
			}
			// The test's own bound: far above the server's deadline.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(conn)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("the connection was still open after %s (server.body_timeout %s): %v", took.Round(time.Millisecond), timeout, err)
			}
			if took > 5*time.Second {
				t.Fatalf("the connection was closed after %s, want about server.body_timeout (%s)", took, timeout)
			}
		})
	}

	t.Run("a later bodyless request on the same connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		body := `{"email":"` + email(1) + `","password":"wrong password"}`
		fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		time.Sleep(3 * timeout)
		fmt.Fprintf(conn, "GET /api/v1/auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", s.access)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("the verification after the deadline of an earlier body: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("the verification after the deadline of an earlier body: %d, want 200", res.StatusCode)
		}
	})
}

// TestIntrospectBasicFormEncoded: the client id and secret are
// form-urlencoded before Basic encoding (RFC 6749 §2.3.1), so a secret with
// "+", "/" and "=" works from a standard client; sent raw, its "+" is a
// space and the secret is wrong.
func TestIntrospectBasicFormEncoded(t *testing.T) {
	const (
		id     = "svc.orders"
		secret = "a+b/c=d+0123456789/xyz=="
	)
	e := newEnv(t, "sqlite", "password_key", func(c *config.Config) {
		c.Introspection.Clients = []string{id + ":" + secret}
	})
	e.register(email(1))
	s := e.login(email(1), "laptop")
	raw := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	cases := []struct {
		name, auth string
		ok         bool
	}{
		{"form-urlencoded (RFC 6749)", raw(url.QueryEscape(id), url.QueryEscape(secret)), true},
		{"percent-encoded in upper and lower case", raw(id, strings.NewReplacer("+", "%2b", "/", "%2F", "=", "%3d").Replace(secret)), true},
		{"raw: + is a space", raw(id, secret), false},
		{"bad percent-encoding", raw(id, secret+"%zz"), false},
		{"encoded id that differs", raw(url.QueryEscape(id+"+"), url.QueryEscape(secret)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.apiBind(t).introspect(c.auth, url.Values{"token": {s.access}})
			if c.ok {
				if r.Code != http.StatusOK || !active(r) {
					t.Fatalf("%d %s, want 200 active", r.Code, r.Raw)
				}
				return
			}
			oauthWantErr(t, c.name, r, http.StatusUnauthorized, "invalid_client")
		})
	}
}

// TestReadyzNoCounters: /readyz on the public listener tells the states
// (database, the cache trusted) and no count; the counts are on the
// metrics listener.
func TestReadyzNoCounters(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withMetrics)
	e.register(email(1))
	s := e.login(email(1), "laptop")
	for range 3 {
		e.verify(s.access)
	}
	r := e.do(http.StatusOK, req{method: "GET", path: "/readyz"})
	comps, _ := r.Body["components"].(map[string]any)
	if comps["database"] != "up" {
		t.Errorf("database: %v, want up", comps["database"])
	}
	cache, ok := comps["cache"].(map[string]any)
	if !ok {
		t.Fatalf("cache: %v, want its state", comps["cache"])
	}
	if cache["trusted"] != true {
		t.Errorf("cache.trusted: %v, want true", cache["trusted"])
	}
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(cache)), func(k string) bool { return k == "trusted" || k == "redis_subscription" }); len(extra) > 0 {
		t.Errorf("/readyz tells the cache's %v: %s; want states only", extra, r.Raw)
	}
	for _, word := range []string{"entries", "hits", "misses", "bypasses", "reads", "received", "published"} {
		if strings.Contains(string(r.Raw), word) {
			t.Errorf("/readyz mentions %q: %s", word, r.Raw)
		}
	}
	m := scrapeMetrics(t, metricsServer(t, e))
	if m.value("authserver_cache_entries") < 1 || m.value("authserver_cache_lookups_total", "result", "hit")+m.value("authserver_cache_lookups_total", "result", "miss") < 3 {
		t.Errorf("the metrics listener lacks the cache's counts: entries %v, hits %v, misses %v", m.value("authserver_cache_entries"),
			m.value("authserver_cache_lookups_total", "result", "hit"), m.value("authserver_cache_lookups_total", "result", "miss"))
	}
}
