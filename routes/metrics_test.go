package routes_test

// The Prometheus metrics, scraped over HTTP after a scripted run through
// the real router: every counter moves by exactly what the script did.

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/config"
)

// scriptRun sends requests and keeps, for each, the series of
// authserver_http_requests_total it must add one to.
type scriptRun struct {
	t    *testing.T
	e    *env
	http map[string]float64
	// secrets are what no label may carry: emails, ids, tokens, the IP.
	secrets []string
}

// do sends q, wants the status, and expects one more request of route
// (the pattern, as the test spells it: never computed from the path).
func (r *scriptRun) do(want int, route string, q req) *resp {
	r.t.Helper()
	out := r.e.do(want, q)
	method := q.method
	if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, method) {
		method = "OTHER"
	}
	r.http["code="+strconv.Itoa(want)+",method="+method+",route="+route]++
	return out
}

func (r *scriptRun) login(email, pw, device string) session {
	r.t.Helper()
	s := tokensOf(r.t, r.do(http.StatusOK, "/api/v1/auth/login", req{method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": email, "password": pw, "device_name": device}}))
	r.secrets = append(r.secrets, s.access, s.refresh, s.loginID)
	return s
}

const (
	verifyRoute  = "/api/v1/auth/verify"
	loginRoute   = "/api/v1/auth/login"
	refreshRoute = "/api/v1/auth/refresh"
)

func TestMetricsScriptedRun(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "session_table", withMetrics, func(c *config.Config) {
			c.BruteForce = config.BruteForce{MaxFailures: 2, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute}
		})
		ts := metricsServer(t, e)
		before := scrapeMetrics(t, ts)
		r := &scriptRun{t: t, e: e, http: map[string]float64{}}

		// Accounts.
		ann, bob, eve, dan := "ann@example.com", "bob@example.com", "eve@example.com", "dan@example.com"
		var uids []string
		for _, m := range []string{ann, bob, eve, dan} {
			out := r.do(http.StatusCreated, "/api/v1/auth/register", req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": m, "password": password}})
			uids = append(uids, out.Body["user"].(map[string]any)["id"].(string))
		}
		r.secrets = append(r.secrets, ann, bob, eve, dan, password, "192.0.2.10")

		// Logins: 6 successes.
		laptop := r.login(ann, password, "laptop")
		phone := r.login(ann, password, "phone")
		tablet := r.login(ann, password, "tablet")
		r.login(ann, password, "desk")
		bobS := r.login(bob, password, "bob")
		eveS := r.login(eve, password, "eve")
		danS := r.login(dan, password, "dan")

		verify := func(want int, token string) *resp {
			return r.do(want, verifyRoute, req{method: "GET", path: "/api/v1/auth/verify", token: token})
		}
		// Verifications: ok 3, /me, /me/events; invalid 3.
		for range 3 {
			verify(http.StatusOK, laptop.access)
		}
		verify(http.StatusUnauthorized, "garbage")
		verify(http.StatusUnauthorized, "")
		r.do(http.StatusOK, "/api/v1/me", req{method: "GET", path: "/api/v1/me", token: laptop.access})
		r.do(http.StatusUnauthorized, "/api/v1/me", req{method: "GET", path: "/api/v1/me", token: "garbage"})
		r.do(http.StatusOK, "/api/v1/me/events", req{method: "GET", path: "/api/v1/me/events", token: laptop.access})

		// Refreshes: ok, invalid, reused (after the grace window); the
		// reuse ended the phone's login: revoked.
		next := tokensOf(t, r.do(http.StatusOK, refreshRoute, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": phone.refresh}}))
		r.secrets = append(r.secrets, next.access, next.refresh)
		r.do(http.StatusUnauthorized, refreshRoute, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": "garbage"}})
		e.clock.Advance(11 * time.Second)
		r.do(http.StatusUnauthorized, refreshRoute, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": phone.refresh}})
		verify(http.StatusUnauthorized, next.access)

		// Revocations, each with the verification of its caller (ok).
		r.do(http.StatusNoContent, "/api/v1/sessions/:id", req{method: "DELETE", path: "/api/v1/sessions/" + tablet.loginID, token: laptop.access})
		verify(http.StatusUnauthorized, tablet.access)
		r.do(http.StatusNoContent, "/api/v1/auth/logout-others", req{method: "POST", path: "/api/v1/auth/logout-others", token: laptop.access})
		r.do(http.StatusNoContent, "/api/v1/auth/logout", req{method: "POST", path: "/api/v1/auth/logout", token: laptop.access})
		verify(http.StatusUnauthorized, laptop.access)
		const newPW = "bob's new password"
		r.secrets = append(r.secrets, newPW)
		bobNew := tokensOf(t, r.do(http.StatusOK, "/api/v1/me/password", req{method: "PUT", path: "/api/v1/me/password", token: bobS.access,
			body: map[string]string{"current_password": password, "new_password": newPW}}))
		r.secrets = append(r.secrets, bobNew.access, bobNew.refresh)
		r.do(http.StatusNoContent, "/api/v1/auth/logout-all", req{method: "POST", path: "/api/v1/auth/logout-all", token: bobNew.access})
		bob2 := r.login(bob, newPW, "again")
		r.do(http.StatusNoContent, "/api/v1/me", req{method: "DELETE", path: "/api/v1/me", token: bob2.access, body: map[string]string{"password": newPW}})
		// A revocation that fails is not one.
		r.do(http.StatusNotFound, "/api/v1/sessions/:id", req{method: "DELETE", path: "/api/v1/sessions/nope", token: eveS.access})

		// A password reset is a revocation of kind password.
		r.do(http.StatusAccepted, "/api/v1/auth/password-reset", req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": eve}})
		resetToken := e.mailer.Last(eve)
		if resetToken == "" {
			t.Fatal("no reset token was mailed")
		}
		const evePW = "eve's new password"
		r.secrets = append(r.secrets, resetToken, evePW)
		confirm := map[string]string{"token": resetToken, "new_password": evePW}
		r.do(http.StatusNoContent, "/api/v1/auth/password-reset/confirm", req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirm})
		r.do(http.StatusBadRequest, "/api/v1/auth/password-reset/confirm", req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirm})

		// Failed logins: two wrong passwords lock eve (max_failures 2), the
		// right one is then refused, a malformed body is an error.
		for range 2 {
			r.do(http.StatusUnauthorized, loginRoute, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": eve, "password": "wrong password"}})
		}
		r.do(http.StatusTooManyRequests, loginRoute, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": eve, "password": evePW}})
		r.do(http.StatusBadRequest, loginRoute, req{method: "POST", path: "/api/v1/auth/login", body: "{"})

		// Expiry, and requests that match no route.
		e.clock.Advance(16 * time.Minute)
		verify(http.StatusUnauthorized, danS.access)
		r.do(http.StatusNotFound, "(no route)", req{method: "GET", path: "/api/v1/nope/" + uids[0]})
		r.do(http.StatusNotFound, "(no route)", req{method: "BREW", path: "/api/v1/coffee"})

		after := scrapeMetrics(t, ts)
		delta := func(name string, labels ...string) float64 {
			return after.value(name, labels...) - before.value(name, labels...)
		}

		t.Run("outcome counters", func(t *testing.T) {
			want := []struct {
				name, label, value string
				n                  float64
			}{
				{"authserver_logins_total", "result", "success", 8},
				{"authserver_logins_total", "result", "invalid_credentials", 2},
				{"authserver_logins_total", "result", "rate_limited", 1},
				{"authserver_logins_total", "result", "error", 1},
				// ok: 3 verify, /me, /me/events, the DELETE /sessions
				// caller twice (204, 404), logout-others, logout,
				// password change, logout-all, delete.
				{"authserver_token_verifications_total", "result", "ok", 12},
				{"authserver_token_verifications_total", "result", "invalid", 3},
				{"authserver_token_verifications_total", "result", "expired", 1},
				{"authserver_token_verifications_total", "result", "revoked", 3},
				{"authserver_refreshes_total", "result", "ok", 1},
				{"authserver_refreshes_total", "result", "reused", 1},
				{"authserver_refreshes_total", "result", "invalid", 1},
				{"authserver_refreshes_total", "result", "error", 0},
				{"authserver_revocations_total", "kind", "logout", 1},
				{"authserver_revocations_total", "kind", "logout_all", 1},
				{"authserver_revocations_total", "kind", "logout_others", 1},
				{"authserver_revocations_total", "kind", "device", 1},
				{"authserver_revocations_total", "kind", "password", 2},
				{"authserver_revocations_total", "kind", "deletion", 1},
				{"authserver_revocations_total", "kind", "admin", 0},
			}
			for _, w := range want {
				if got := delta(w.name, w.label, w.value); got != w.n {
					t.Errorf("%s{%s=%q} moved by %v, want %v", w.name, w.label, w.value, got, w.n)
				}
			}
		})

		t.Run("requests by route pattern and status", func(t *testing.T) {
			got := map[string]float64{}
			b := before.series("authserver_http_requests_total")
			for k, v := range after.series("authserver_http_requests_total") {
				if d := v - b[k]; d != 0 {
					got[k] = d
				}
			}
			if !maps.Equal(got, r.http) {
				for _, k := range slices.Sorted(maps.Keys(r.http)) {
					t.Logf("want %s: %v, got %v", k, r.http[k], got[k])
				}
				for _, k := range slices.Sorted(maps.Keys(got)) {
					if _, ok := r.http[k]; !ok {
						t.Logf("unexpected %s: %v", k, got[k])
					}
				}
				t.Fatal("authserver_http_requests_total does not count what the script sent")
			}
			// The histogram counts the same requests per method and route.
			perRoute := map[string]float64{}
			re := regexp.MustCompile(`^code=\d+,(method=[^,]+,route=.*)$`)
			for k, v := range r.http {
				perRoute[re.FindStringSubmatch(k)[1]] += v
			}
			hb := before.series("authserver_http_request_duration_seconds")
			for k, v := range perRoute {
				if d := after.series("authserver_http_request_duration_seconds")[k] - hb[k]; d != v {
					t.Errorf("duration histogram %s counted %v, want %v", k, d, v)
				}
			}
		})

		t.Run("stats of the caches and limiters", func(t *testing.T) {
			checks := []struct {
				what string
				ok   bool
			}{
				{"cache hits moved", delta("authserver_cache_lookups_total", "result", "hit") > 0},
				{"cache misses moved", delta("authserver_cache_lookups_total", "result", "miss") > 0},
				{"cache is trusted", after.value("authserver_cache_trusted") == 1},
				{"outbox read", after.value("authserver_cache_outbox_reads_total", "result", "ok") > 0},
				{"one reset mailed", delta("authserver_workq_jobs_total", "queue", "password_reset", "result", "done") == 1},
				{"bcrypt slots", after.value("authserver_passhash_slots") >= 1},
				{"two failures", delta("authserver_bruteforce_failures_total") == 2},
				{"one lock", delta("authserver_bruteforce_locks_total") == 1},
				{"one refusal", delta("authserver_bruteforce_refused_total") == 1},
				// 8 logins, the password change, the deletion and the
				// completed password reset (which lifts the account's lock).
				{"eleven resets", delta("authserver_bruteforce_resets_total") == 11},
				{"rate limit rules listed", len(after.series("authserver_ratelimit_decisions_total")) == 12},
				{"connection pool", after.value("go_sql_max_open_connections", "db_name", "authserver") >= 1},
				{"go runtime", after.fams["go_goroutines"] != nil},
				{"process", after.fams["process_cpu_seconds_total"] != nil},
				{"build info", after.value("authserver_build_info", "version", versionLabel(t, after), "strategy", "session_table", "driver", driver) == 1},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s: no", c.what)
				}
			}
			if after.fams["go_sql_open_connections"] == nil {
				t.Error("no go_sql_* metrics of the connection pool")
			}
		})

		t.Run("no id, email, IP or token in a label", func(t *testing.T) {
			r.secrets = append(r.secrets, uids...)
			labelsCarryNothing(t, after, r.secrets)
		})

		t.Run("every metric is documented", func(t *testing.T) {
			doc, err := os.ReadFile("../docs/operating.md")
			if err != nil {
				t.Fatal(err)
			}
			for name := range after.fams {
				if strings.HasPrefix(name, "authserver_") && !strings.Contains(string(doc), "`"+name+"`") {
					t.Errorf("%s is not in docs/operating.md", name)
				}
			}
		})
	})
}

// versionLabel is the version label of authserver_build_info.
func versionLabel(t *testing.T, s scrape) string {
	t.Helper()
	f := s.fams["authserver_build_info"]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatal("authserver_build_info: want exactly one series")
	}
	for _, l := range f.GetMetric()[0].GetLabel() {
		if l.GetName() == "version" {
			return l.GetValue()
		}
	}
	t.Fatal("authserver_build_info has no version label")
	return ""
}

// labelsCarryNothing fails unless every label name is one of the
// documented ones and no label value (and nowhere in the exposition) is
// one of secrets. Numeric user ids are compared with the whole value
// (they would match bucket bounds as substrings).
func labelsCarryNothing(t *testing.T, s scrape, secrets []string) {
	t.Helper()
	allowed := map[string]bool{
		"method": true, "route": true, "code": true, "result": true, "kind": true, "version": true,
		"strategy": true, "driver": true, "rule": true, "queue": true, "event": true, "le": true,
		"db_name": true, "quantile": true, "cause": true,
		// Go runtime collector labels.
		"major": true, "minor": true, "patchlevel": true, "go_version": true, "version_": true,
	}
	for name, f := range s.fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !allowed[l.GetName()] && !strings.HasPrefix(name, "go_") {
					t.Errorf("%s has a label %q", name, l.GetName())
				}
				if l.GetName() == "le" || l.GetName() == "quantile" {
					continue
				}
				for _, sec := range secrets {
					if sec != "" && l.GetValue() == sec {
						t.Errorf("%s{%s=%q} carries a user's value", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	for _, sec := range secrets {
		if _, err := strconv.Atoi(sec); err == nil {
			continue
		}
		if sec != "" && strings.Contains(s.text, sec) {
			t.Errorf("the exposition contains %q", sec)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(len(s.text), " bytes of exposition"))
	}
}

func TestMetricsOff(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key")
	if h := e.srv.MetricsHandler(); h != nil {
		t.Fatal("metrics.addr is empty, yet the server has a metrics handler")
	}
	if r := e.send(req{method: "GET", path: "/metrics"}); r.Code != http.StatusNotFound {
		t.Fatalf("GET /metrics on the API: %d, want 404", r.Code)
	}
	on := newEnv(t, "sqlite", "password_key", withMetrics)
	if r := on.send(req{method: "GET", path: "/metrics"}); r.Code != http.StatusNotFound {
		t.Fatalf("with metrics on, GET /metrics on the API answered %d: the metrics must be on their own listener only", r.Code)
	}
}

// TestMetricsCountAnApplicationsVerifications: Server.Middleware, which
// protects an embedding application's own routes, counts its
// verifications like the API's.
func TestMetricsCountAnApplicationsVerifications(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", withMetrics)
	ts := metricsServer(t, e)
	e.register("ann@example.com")
	tok := tokensOf(t, e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": "ann@example.com", "password": password}}))
	app := gin.New()
	app.GET("/orders", e.srv.Middleware(), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	before := scrapeMetrics(t, ts)
	for _, c := range []struct {
		token string
		want  int
	}{{tok.access, http.StatusNoContent}, {tok.access, http.StatusNoContent}, {"garbage", http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Fatalf("GET /orders: %d, want %d", w.Code, c.want)
		}
	}
	after := scrapeMetrics(t, ts)
	for result, want := range map[string]float64{"ok": 2, "invalid": 2, "expired": 0, "revoked": 0} {
		if got := after.value("authserver_token_verifications_total", "result", result) - before.value("authserver_token_verifications_total", "result", result); got != want {
			t.Errorf("%s: moved by %v, want %v", result, got, want)
		}
	}
}
