package routes_test

// GET /api/v1/me/events: the caller's own audit events, newest first.

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/revocable/authserver/models"
)

type eventView struct {
	Time      time.Time
	Action    string
	Result    string
	IP        string
	UserAgent string
}

func (e *env) events(token, query string) []eventView {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/me/events" + query, token: token})
	list, ok := r.Body["events"].([]any)
	if !ok {
		e.t.Fatalf("no events list in %s", r.Raw)
	}
	out := make([]eventView, len(list))
	for i, v := range list {
		m := v.(map[string]any)
		keys := apiKeys(m)
		if !slices.Equal(keys, []string{"action", "ip", "result", "time", "user_agent"}) {
			e.t.Fatalf("event fields %v, want action, ip, result, time, user_agent", keys)
		}
		ts, err := time.Parse(time.RFC3339Nano, m["time"].(string))
		if err != nil {
			e.t.Fatalf("time %q: %v", m["time"], err)
		}
		out[i] = eventView{Time: ts, Action: m["action"].(string), Result: m["result"].(string), IP: m["ip"].(string), UserAgent: m["user_agent"].(string)}
	}
	return out
}

func TestMyEvents(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "multi_device", trustProxy)
		const (
			ann, bob = "ann@example.com", "bob@example.com"
			ip, ua   = "198.51.100.7", "EventsTest/2.0 (X11; Linux)"
			evilIP   = "203.0.113.9"
		)
		annID := e.register(ann)
		bobID := e.register(bob)
		from := func(addr, agent string) map[string]string {
			return map[string]string{"X-Forwarded-For": addr, "User-Agent": agent}
		}
		step := func() { e.clock.Advance(time.Second) }

		step()
		laptop := tokensOf(t, e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", header: from(ip, ua),
			body: map[string]string{"email": ann, "password": password, "device_name": "laptop"}}))
		step()
		e.do(http.StatusUnauthorized, req{method: "POST", path: "/api/v1/auth/login", header: from(evilIP, "curl/8"),
			body: map[string]string{"email": ann, "password": "not the password"}})
		step()
		bobS := e.login(bob, "bob")
		step()
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: laptop.access, header: from(ip, ua)})
		step()
		viewer := e.login(ann, "viewer")

		t.Run("a login from one IP and user agent, then a logout, newest first", func(t *testing.T) {
			got := e.events(viewer.access, "")
			want := []struct{ action, result, ip, ua string }{
				{"login", "success", proxyIP, ""},
				{"logout", "success", ip, ua},
				{"login", "failure", evilIP, "curl/8"},
				{"login", "success", ip, ua},
				{"register", "success", proxyIP, ""},
			}
			if len(got) != len(want) {
				t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
			}
			for i, w := range want {
				g := got[i]
				if g.Action != w.action || g.Result != w.result || g.IP != w.ip || g.UserAgent != w.ua {
					t.Errorf("event %d = %+v, want %+v", i, g, w)
				}
				if i > 0 && g.Time.After(got[i-1].Time) {
					t.Errorf("event %d is newer than event %d", i, i-1)
				}
			}
		})

		t.Run("limit", func(t *testing.T) {
			if got := e.events(viewer.access, "?limit=2"); len(got) != 2 || got[0].Action != "login" || got[1].Action != "logout" {
				t.Fatalf("limit=2 gave %+v", got)
			}
			if got := e.events(viewer.access, "?limit=200"); len(got) != 5 {
				t.Fatalf("limit=200 gave %d events", len(got))
			}
			for _, q := range []string{"?limit=0", "?limit=201", "?limit=-1", "?limit=abc", "?limit=1.5", "?limit=", "?limit=1&limit=2", "?limit=99999999999999999999"} {
				r := e.send(req{method: "GET", path: "/api/v1/me/events" + q, token: viewer.access})
				if r.Code != http.StatusBadRequest || r.errCode() != "invalid_request" {
					t.Errorf("%s: %d %s, want 400 invalid_request", q, r.Code, r.Raw)
				}
			}
		})

		t.Run("the default is 50, the most 200", func(t *testing.T) {
			for range 60 {
				e.clock.Advance(time.Millisecond)
				e.do(http.StatusUnauthorized, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": bob, "password": "wrong password"}})
			}
			if got := e.events(bobS.access, ""); len(got) != 50 {
				t.Fatalf("default: %d events, want 50", len(got))
			}
			if got := e.events(bobS.access, "?limit=200"); len(got) != 62 {
				t.Fatalf("limit=200: %d events, want 62 (register, login, 60 failures)", len(got))
			}
		})

		t.Run("only the caller's own", func(t *testing.T) {
			for _, ev := range e.events(bobS.access, "?limit=200") {
				if ev.IP == ip || ev.IP == evilIP || ev.Action == "logout" {
					t.Fatalf("bob sees an event of ann's: %+v", ev)
				}
			}
			if r := e.send(req{method: "GET", path: "/api/v1/me/events"}); r.Code != http.StatusUnauthorized {
				t.Fatalf("without a token: %d", r.Code)
			}
		})

		t.Run("deleting the account deletes its events", func(t *testing.T) {
			id, _ := strconv.ParseUint(bobID, 10, 64)
			if n := e.count(&models.AuditEvent{}, "user_id = ?", id); n == 0 {
				t.Fatal("bob has no events to delete")
			}
			e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: bobS.access, body: map[string]string{"password": password}})
			if n := e.count(&models.AuditEvent{}, "user_id = ?", id); n != 0 {
				t.Fatalf("%d events of the deleted account remain", n)
			}
			// Only its own: the other account keeps its trail.
			annUID, _ := strconv.ParseUint(annID, 10, 64)
			if n := e.count(&models.AuditEvent{}, "user_id = ?", annUID); n == 0 {
				t.Fatal("deleting bob deleted ann's events too")
			}
		})
	})
}
