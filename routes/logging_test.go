package routes_test

// Logs: the request id goes from the header to every log line of the
// request and to the error body; no token, password or reset token ever
// reaches a log, at any level, in either format.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models/dbtest"
)

// proxyIP is the harness's client address (see env.send).
const proxyIP = "192.0.2.10"

func logFormat(format, level string) func(*config.Config) {
	return func(c *config.Config) { c.Log.Format, c.Log.Level = format, level }
}

func trustProxy(c *config.Config) { c.Server.TrustedProxies = []string{proxyIP} }

// idInLine reports whether a log line names the request id, in either
// format.
func idInLine(line, id string) bool {
	return strings.Contains(line, "request_id="+id) || strings.Contains(line, `"request_id":"`+id+`"`)
}

func TestRequestIDTravels(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, format := range []string{"text", "json"} {
			t.Run(format, func(t *testing.T) {
				testRequestID(t, driver, format)
			})
		}
	})
}

func testRequestID(t *testing.T, driver, format string) {
	e, logs := newEnvLog(t, driver, "password_key", logFormat(format, "debug"), trustProxy)
	errorBodyID := func(t *testing.T, r *resp) string {
		t.Helper()
		er, _ := r.Body["error"].(map[string]any)
		id, _ := er["request_id"].(string)
		return id
	}

	t.Run("from a trusted proxy: header, every log line, error body", func(t *testing.T) {
		const id = "trace-abc.123_X"
		off := len(logs.String())
		r := e.send(req{method: "GET", path: "/api/v1/me", token: "garbage", header: map[string]string{"X-Request-Id": id}})
		if r.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", r.Code)
		}
		if got := r.Header.Get("X-Request-Id"); got != id {
			t.Errorf("X-Request-Id answered %q, want %q", got, id)
		}
		if got := errorBodyID(t, r); got != id {
			t.Errorf("error.request_id = %q, want %q", got, id)
		}
		lines := logs.since(off)
		if len(lines) == 0 || lines[0] == "" {
			t.Fatal("the request logged nothing")
		}
		for _, l := range lines {
			if !idInLine(l, id) {
				t.Errorf("a log line of the request does not name it: %s", l)
			}
		}
	})

	t.Run("not from an untrusted peer, nor malformed", func(t *testing.T) {
		untrusted, ulogs := newEnvLog(t, driver, "password_key", logFormat(format, "info"))
		cases := []struct {
			name string
			e    *env
			logs *logBuffer
			sent string
		}{
			{"untrusted peer", untrusted, ulogs, "spoofed-id"},
			{"too long", e, logs, strings.Repeat("a", 65)},
			{"bad characters", e, logs, "id with spaces"},
			{"log injection", e, logs, "x\nlevel=ERROR msg=forged"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				off := len(c.logs.String())
				r := c.e.send(req{method: "GET", path: "/api/v1/me", token: "garbage", header: map[string]string{"X-Request-Id": c.sent}})
				got := r.Header.Get("X-Request-Id")
				if got == "" || got == c.sent {
					t.Fatalf("X-Request-Id answered %q: the sent id must be replaced by a fresh one", got)
				}
				if body := errorBodyID(t, r); body != got {
					t.Errorf("error.request_id %q, header %q", body, got)
				}
				lines := c.logs.since(off)
				if len(lines) == 0 || lines[0] == "" {
					t.Fatal("the request logged nothing")
				}
				for _, l := range lines {
					if !idInLine(l, got) || strings.Contains(l, c.sent) {
						t.Errorf("log line %q: want the fresh id %q and nothing of the sent one", l, got)
					}
				}
			})
		}
	})

	t.Run("into the error line of a failed request", func(t *testing.T) {
		down, dlogs := newEnvLog(t, driver, "password_key", logFormat(format, "info"), trustProxy)
		sqlDB, err := down.db.DB()
		if err != nil {
			t.Fatal(err)
		}
		_ = sqlDB.Close()
		const id = "db-down-1"
		r := down.send(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"X-Request-Id": id},
			body: map[string]string{"email": "ann@example.com", "password": password}})
		if r.Code != http.StatusServiceUnavailable {
			t.Fatalf("login with the database closed: %d, want 503", r.Code)
		}
		if errorBodyID(t, r) != id {
			t.Errorf("error.request_id = %q", errorBodyID(t, r))
		}
		found := false
		for _, l := range strings.Split(dlogs.String(), "\n") {
			if strings.Contains(l, "request failed") {
				found = true
				if !idInLine(l, id) {
					t.Errorf("the error line does not name the request: %s", l)
				}
			}
		}
		if !found {
			t.Fatalf("no error line was logged:\n%s", dlogs.String())
		}
	})

	t.Run("into the lines of the request's background work", func(t *testing.T) {
		// The LogMailer logs from the reset queue, after the answer,
		// with the request's metadata.
		cfg := config.Defaults()
		cfg.Password.BcryptCost = 4
		cfg.NoLimits()
		logFormat(format, "info")(cfg)
		trustProxy(cfg)
		buf := &logBuffer{}
		log, err := authserver.NewLogger(cfg, buf)
		if err != nil {
			t.Fatal(err)
		}
		srv := startServer(t, authserver.Options{Config: cfg, DB: dbtest.Open(t, driver), Secret: testSecret, Log: log})
		me := &env{t: t, cfg: cfg, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: newClock()}
		me.register("ann@example.com")
		const id = "reset-req-7"
		me.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", header: map[string]string{"X-Request-Id": id},
			body: map[string]string{"email": "ann@example.com"}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.WaitResets(ctx); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "no mailer is configured") {
				found = true
				if !idInLine(l, id) {
					t.Errorf("the mailer's line does not name the request: %s", l)
				}
			}
		}
		if !found {
			t.Fatalf("the LogMailer logged nothing:\n%s", buf.String())
		}
	})
}

func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	matrix(t, func(t *testing.T, driver, name string) {
		for _, format := range []string{"text", "json"} {
			t.Run(format, func(t *testing.T) {
				e, logs := newEnvLog(t, driver, name, logFormat(format, "debug"), trustProxy)
				seen := fullAPIRun(t, e)
				out := logs.String()
				if strings.Count(out, "\n") < 20 {
					t.Fatalf("the run logged almost nothing, the test would prove nothing:\n%s", out)
				}
				if format == "json" {
					for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
						if !json.Valid([]byte(l)) {
							t.Errorf("not a JSON line: %s", l)
						}
					}
				}
				for _, s := range seen {
					if strings.Contains(out, s) {
						t.Errorf("the log holds a secret the run saw (%d chars, starting %.6q)", len(s), s)
					}
				}
				// Any JWT at all: its header starts so.
				if strings.Contains(out, "eyJhbGciOi") {
					t.Error("the log holds a JWT")
				}
			})
		}
	})
}

// fullAPIRun drives every endpoint (successes and failures) and returns
// every token, password and reset token it saw or sent.
func fullAPIRun(t *testing.T, e *env) []string {
	t.Helper()
	const (
		pw1, pw2, pw3 = "first password 1", "second password 2", "third password 3"
		wrong         = "a wrong password"
		inBadJSON     = "password-in-broken-json"
	)
	seen := []string{pw1, pw2, pw3, wrong, inBadJSON}
	ann := "ann@example.com"
	// send is e.send for requests whose answer depends on the strategy:
	// whatever it is, the request must have reached its handler (no 404)
	// and not failed (no 5xx but 501 not_supported), or the log would
	// miss what the test means to look for in it.
	send := func(r req) *resp {
		t.Helper()
		out := e.send(r)
		if out.Code == http.StatusNotFound || out.Code >= 500 && out.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s: %d %s", r.method, r.path, out.Code, out.Raw)
		}
		return out
	}
	tokens := func(r *resp) session {
		t.Helper()
		if r.Code != http.StatusOK {
			t.Fatalf("status %d: %s", r.Code, r.Raw)
		}
		s := session{access: r.str("access_token"), refresh: r.str("refresh_token")}
		if c := r.cookie("refresh_token"); s.refresh == "" && c != nil {
			s.refresh = c.Value // a cookie refresh answers it only there
		}
		seen = append(seen, s.access, s.refresh)
		return s
	}
	login := func(pw, device string) *resp {
		return send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann, "password": pw, "device_name": device},
			header: map[string]string{"User-Agent": "logtest/1.0"}})
	}
	e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": ann, "password": pw1}})
	e.do(http.StatusUnauthorized, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann, "password": wrong}})
	e.do(http.StatusBadRequest, req{method: "POST", path: "/api/v1/auth/login", body: `{"email":"` + ann + `","password":"` + inBadJSON + `"`})
	laptop := tokens(login(pw1, "laptop"))
	phone := tokens(login(pw1, "phone"))
	for _, p := range []string{"/api/v1/auth/verify", "/api/v1/me", "/api/v1/me/events", "/api/v1/sessions"} {
		send(req{method: "GET", path: p, token: laptop.access})
	}
	// A token with one character changed, and in a malformed header.
	bad := laptop.access[:len(laptop.access)-2] + "xx"
	seen = append(seen, bad)
	send(req{method: "GET", path: "/api/v1/auth/verify", token: bad})
	send(req{method: "GET", path: "/api/v1/auth/verify", header: map[string]string{"Authorization": "Basic " + laptop.access}})

	// Refresh: body, the grace retry, the cookie, reuse.
	// (The phone's: under single_device its login replaced the laptop's.)
	r1 := tokens(send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": phone.refresh}}))
	tokens(send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": phone.refresh}}))
	r2 := tokens(send(req{method: "POST", path: "/api/v1/auth/refresh", header: map[string]string{"X-Requested-With": "test"},
		cookies: []*http.Cookie{{Name: "refresh_token", Value: r1.refresh}}}))

	// Devices.
	// (Under single_device the laptop's login is gone already: 404.)
	e.send(req{method: "DELETE", path: "/api/v1/sessions/" + sidOf(t, laptop.access), token: r2.access})
	send(req{method: "POST", path: "/api/v1/auth/logout-others", token: r2.access})

	// Reuse after the grace window, and tokens that never were.
	e.clock.Advance(11 * time.Second)
	send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": phone.refresh}})
	send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": laptop.refresh}})
	send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": "not-a-refresh-token-but-a-secret-anyway"}})
	seen = append(seen, "not-a-refresh-token-but-a-secret-anyway")

	// Reset with the mailed token, twice (the second is refused).
	e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": ann}})
	reset := e.mailer.Last(ann)
	if reset == "" {
		t.Fatal("no reset token was mailed")
	}
	seen = append(seen, reset)
	confirm := map[string]string{"token": reset, "new_password": pw2}
	e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirm})
	e.do(http.StatusBadRequest, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirm})

	// Password change, logouts, deletion.
	s := tokens(login(pw2, "laptop"))
	send(req{method: "PUT", path: "/api/v1/me/password", token: s.access, body: map[string]string{"current_password": wrong, "new_password": pw3}})
	s = tokens(send(req{method: "PUT", path: "/api/v1/me/password", token: s.access, body: map[string]string{"current_password": pw2, "new_password": pw3}}))
	send(req{method: "POST", path: "/api/v1/auth/logout", token: s.access})
	s = tokens(login(pw3, "laptop"))
	send(req{method: "POST", path: "/api/v1/auth/logout-all", token: s.access})
	s = tokens(login(pw3, "laptop"))
	send(req{method: "DELETE", path: "/api/v1/me", token: s.access, body: map[string]string{"password": wrong}})
	e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: s.access, body: map[string]string{"password": pw3}})
	send(req{method: "GET", path: "/api/v1/me", token: s.access})
	return seen
}

// TestRequestLogLevels: one request line per request at info, except the
// successful verifications, which a proxy sends for every request it
// forwards: those are logged at debug only. A refused verification is
// always logged.
func TestRequestLogLevels(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, level := range []string{"info", "debug"} {
			t.Run(level, func(t *testing.T) {
				e, logs := newEnvLog(t, driver, "password_key", logFormat("json", level))
				e.register("levels@example.com")
				s := e.login("levels@example.com", "laptop")
				okVerify := 0
				if level == "debug" {
					okVerify = 1
				}
				cases := []struct {
					name string
					r    req
					code int
					want int
				}{
					{"GET /me", req{method: "GET", path: "/api/v1/me", token: s.access}, http.StatusOK, 1},
					{"GET verify, valid", req{method: "GET", path: "/api/v1/auth/verify", token: s.access}, http.StatusOK, okVerify},
					{"POST verify, valid", req{method: "POST", path: "/api/v1/auth/verify", token: s.access}, http.StatusOK, okVerify},
					{"GET verify, garbage", req{method: "GET", path: "/api/v1/auth/verify", token: "garbage"}, http.StatusUnauthorized, 1},
					{"GET verify, no token", req{method: "GET", path: "/api/v1/auth/verify"}, http.StatusUnauthorized, 1},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						off := len(logs.String())
						if r := e.send(c.r); r.Code != c.code {
							t.Fatalf("answered %d, want %d: %s", r.Code, c.code, r.Raw)
						}
						n := 0
						for _, l := range logs.since(off) {
							if strings.Contains(l, `"msg":"request"`) {
								n++
							}
						}
						if n != c.want {
							t.Errorf("%d request lines at %s, want %d: %q", n, level, c.want, logs.since(off))
						}
					})
				}
			})
		}
	})
}
