package main

// The operating commands through the real binary: a running server
// (binarytest.Start) and the admin CLI as a second process on the same
// database with the same configuration, as an operator runs them.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

const testPassword = "correct horse battery"

// deployment is the configuration a server and the CLI share (AUTH_*).
type deployment struct {
	driver string
	env    map[string]string
}

func newDeployment(t *testing.T, driver string, env map[string]string) *deployment {
	t.Helper()
	driver, dsn := dbtest.DSN(t, driver)
	d := &deployment{driver: driver, env: map[string]string{
		"AUTH_DATABASE_DRIVER": driver, "AUTH_DATABASE_DSN": dsn,
		"AUTH_STRATEGY": "password_key", "AUTH_JWT_SECRET": binarytest.Secret,
		"AUTH_PASSWORD_BCRYPT_COST": "4", "AUTH_COOKIES_SECURE": "false",
		"AUTH_RATELIMIT_REGISTER_PER_IP": "0", "AUTH_RATELIMIT_LOGIN_PER_IP": "0",
	}}
	for k, v := range env {
		d.env[k] = v
	}
	return d
}

func (d *deployment) start(t *testing.T) *binarytest.Server {
	t.Helper()
	return binarytest.Start(t, binarytest.Options{Driver: d.driver, Env: d.env})
}

// cliResult is what one run of the CLI did.
type cliResult struct {
	out, errOut string
	err         error
	took        time.Duration
	ended       time.Time
}

// cli runs the binary with args in its own process, with the deployment's
// configuration, stdin as its standard input, in an empty directory.
func (d *deployment) cli(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binarytest.Binary(t), args...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range d.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	return cliResult{out: out.String(), errOut: errOut.String(), err: err, took: time.Since(start), ended: time.Now()}
}

// must runs the CLI and fails the test unless it exits 0.
func (d *deployment) must(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	r := d.cli(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("authserver %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r
}

// mustFail runs the CLI and fails the test unless it exits non-zero with
// stderr containing want.
func (d *deployment) mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	d.mustFailIn(t, "", want, args...)
}

// mustFailIn is mustFail with stdin as the standard input.
func (d *deployment) mustFailIn(t *testing.T, stdin, want string, args ...string) {
	t.Helper()
	r := d.cli(t, stdin, args...)
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) {
		t.Fatalf("authserver %s: want a non-zero exit, got %v\nstdout: %s", strings.Join(args, " "), r.err, r.out)
	}
	if !strings.Contains(r.errOut, want) {
		t.Fatalf("authserver %s: stderr %q does not say %q", strings.Join(args, " "), r.errOut, want)
	}
}

func login(t *testing.T, s *binarytest.Server, email, pw string) *binarytest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": pw, "device_name": "cli-test"})
}

func tokensFrom(t *testing.T, r *binarytest.Response) binarytest.Tokens {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var tok binarytest.Tokens
	r.JSON(t, &tok)
	return tok
}

func verifyStatus(t *testing.T, s *binarytest.Server, token string) int {
	t.Helper()
	return s.Do(t, http.MethodGet, "/api/v1/auth/verify", token, nil).Status
}

// jwtPart decodes part i (0: header, 1: claims) of a token.
func jwtPart(t *testing.T, token string, i int, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func sid(t *testing.T, token string) string {
	var c struct{ SID string }
	jwtPart(t, token, 1, &c)
	return c.SID
}

func kid(t *testing.T, token string) string {
	var h struct{ Kid string }
	jwtPart(t, token, 0, &h)
	return h.Kid
}

func TestAdminUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := newDeployment(t, driver, map[string]string{"AUTH_BRUTEFORCE_MAX_FAILURES": "2", "AUTH_CACHE_MAX_STALENESS": "400ms"})
			srv := d.start(t)
			const ann = "ann@example.com"

			t.Run("create", func(t *testing.T) {
				r := d.must(t, testPassword+"\n", "user", "create", "Ann@Example.com")
				if !regexp.MustCompile(`^created user \d+ ann@example\.com\n$`).MatchString(r.out) {
					t.Fatalf("output %q", r.out)
				}
				tokensFrom(t, login(t, srv, ann, testPassword))
				// A second create of the address fails and leaves the
				// account as it was: its password is still the first.
				d.mustFailIn(t, "another password 2\n", "exists already", "user", "create", ann)
				tokensFrom(t, login(t, srv, ann, testPassword))
				d.mustFailIn(t, "short\n", "at least 8 characters", "user", "create", "bob@example.com")
				d.mustFail(t, "no password on standard input", "user", "create", "bob@example.com")
				d.mustFailIn(t, testPassword+"\n", "not a valid address", "user", "create", "not-an-email")
			})

			t.Run("list", func(t *testing.T) {
				srv.Register(t, "zed@example.com", testPassword)
				out := d.must(t, "", "user", "list").out
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], ann) || !strings.Contains(lines[2], "zed@example.com") {
					t.Fatalf("user list:\n%s", out)
				}
			})

			t.Run("unlock clears the brute-force lock", func(t *testing.T) {
				for range 2 {
					if r := login(t, srv, ann, "wrong password"); r.Status != http.StatusUnauthorized {
						t.Fatalf("wrong password: %d", r.Status)
					}
				}
				if r := login(t, srv, ann, testPassword); r.Status != http.StatusTooManyRequests {
					t.Fatalf("locked: %d %s, want 429", r.Status, r.Body)
				}
				if out := d.must(t, "", "user", "unlock", " ANN@example.com ").out; out != "unlocked "+ann+"\n" {
					t.Fatalf("output %q", out)
				}
				tok := tokensFrom(t, login(t, srv, ann, testPassword))
				var evs struct {
					Events []struct {
						Action    string
						UserAgent string `json:"user_agent"`
					}
				}
				srv.Do(t, http.MethodGet, "/api/v1/me/events", tok.Access, nil).JSON(t, &evs)
				var admin []string
				for _, e := range evs.Events {
					if strings.HasPrefix(e.Action, "admin_") {
						admin = append(admin, e.Action+"/"+e.UserAgent)
					}
				}
				if want := []string{"admin_unlock/" + adminAgent, "admin_user_created/" + adminAgent}; strings.Join(admin, ",") != strings.Join(want, ",") {
					t.Fatalf("admin events in /me/events: %v, want %v", admin, want)
				}
			})

			t.Run("delete", func(t *testing.T) {
				tok := tokensFrom(t, login(t, srv, ann, testPassword))
				if s := verifyStatus(t, srv, tok.Access); s != http.StatusOK {
					t.Fatalf("verify before: %d", s)
				}
				r := d.must(t, "", "user", "delete", ann)
				if !strings.HasPrefix(r.out, "deleted user ") {
					t.Fatalf("output %q", r.out)
				}
				waitRejected(t, srv, tok.Access, r.ended, 400*time.Millisecond)
				d.mustFail(t, "no account has the email", "user", "delete", ann)
				if out := d.must(t, "", "user", "list").out; strings.Contains(out, ann) {
					t.Fatalf("deleted, yet listed:\n%s", out)
				}
			})
		})
	}
}

// waitRejected polls the running server until it rejects token, and fails
// the test unless that happens within bound (cache.max_staleness) of
// since, plus slack for the request itself on a loaded machine.
func waitRejected(t *testing.T, srv *binarytest.Server, token string, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	const slack = 250 * time.Millisecond
	deadline := since.Add(bound + slack + 5*time.Second)
	for {
		s := verifyStatus(t, srv, token)
		took := time.Since(since)
		if s == http.StatusUnauthorized {
			t.Logf("rejected %s after the command exited (bound %s)", took.Round(time.Millisecond), bound)
			if took > bound+slack {
				t.Errorf("rejected after %s: more than cache.max_staleness %s (+%s)", took, bound, slack)
			}
			return took
		}
		if s != http.StatusOK {
			t.Fatalf("verify: %d", s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running server still accepts the token %s after the command", took)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionsRevokeReachesRunningServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	const staleness = 400 * time.Millisecond
	for _, driver := range dbtest.Drivers() {
		for _, name := range []string{"session_table", "password_key", "stateless"} {
			t.Run(driver+"/"+name, func(t *testing.T) {
				d := newDeployment(t, driver, map[string]string{"AUTH_STRATEGY": name, "AUTH_CACHE_MAX_STALENESS": staleness.String()})
				srv := d.start(t)
				const ann, bob = "ann@example.com", "bob@example.com"
				srv.Register(t, ann, testPassword)
				srv.Register(t, bob, testPassword)
				laptop := tokensFrom(t, login(t, srv, ann, testPassword))
				phone := tokensFrom(t, login(t, srv, ann, testPassword))
				bobTok := tokensFrom(t, login(t, srv, bob, testPassword))
				for _, tok := range []string{laptop.Access, phone.Access, bobTok.Access} {
					// Verified once: the running server's cache holds ann.
					if s := verifyStatus(t, srv, tok); s != http.StatusOK {
						t.Fatalf("verify: %d", s)
					}
				}

				t.Run("list", func(t *testing.T) {
					out := d.must(t, "", "sessions", "list", "--user", ann).out
					for _, tok := range []string{laptop.Access, phone.Access} {
						if !strings.Contains(out, sid(t, tok)) {
							t.Fatalf("login %s not listed:\n%s", sid(t, tok), out)
						}
					}
					if strings.Contains(out, sid(t, bobTok.Access)) {
						t.Fatalf("bob's login listed for ann:\n%s", out)
					}
					d.mustFail(t, "no account has the email", "sessions", "list", "--user", "nobody@example.com")
				})

				t.Run("revoke one login", func(t *testing.T) {
					d.mustFail(t, "exactly one of", "sessions", "revoke", "--user", ann)
					d.mustFail(t, "no live login", "sessions", "revoke", "--user", ann, "--id", "nope")
					r := d.must(t, "", "sessions", "revoke", "--user", ann, "--id", sid(t, laptop.Access))
					if refresh := srv.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": laptop.Refresh}); refresh.Status != http.StatusUnauthorized {
						t.Fatalf("the revoked login's refresh token: %d", refresh.Status)
					}
					if name == "session_table" {
						waitRejected(t, srv, laptop.Access, r.ended, staleness)
					} else if !strings.Contains(r.out, "cannot end its access tokens") {
						t.Fatalf("under %s the output must say the access token lives on: %q", name, r.out)
					}
					if s := verifyStatus(t, srv, phone.Access); s != http.StatusOK {
						t.Fatalf("the other login: verify %d, want 200", s)
					}
				})

				t.Run("revoke all", func(t *testing.T) {
					r := d.must(t, "", "sessions", "revoke", "--user", ann, "--all")
					if name == "stateless" {
						if !strings.Contains(r.out, "cannot end its access tokens") {
							t.Fatalf("output %q", r.out)
						}
					} else {
						waitRejected(t, srv, phone.Access, r.ended, staleness)
					}
					if refresh := srv.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": phone.Refresh}); refresh.Status != http.StatusUnauthorized {
						t.Fatalf("refresh after revoke --all: %d", refresh.Status)
					}
					if s := verifyStatus(t, srv, bobTok.Access); s != http.StatusOK {
						t.Fatalf("another user's token: verify %d, want 200", s)
					}
				})

				t.Run("prune", func(t *testing.T) {
					out := d.must(t, "", "prune").out
					m := regexp.MustCompile(`^pruned (\d+) rows\n$`).FindStringSubmatch(out)
					if m == nil {
						t.Fatalf("output %q", out)
					}
					if n, _ := strconv.Atoi(m[1]); n < 2 {
						t.Fatalf("pruned %d rows; the revoked refresh tokens at least should have gone", n)
					}
					if again := d.must(t, "", "prune").out; again != "pruned 0 rows\n" {
						t.Fatalf("second prune: %q", again)
					}
				})
			})
		}
	}
}

func TestConfigCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	secrets := map[string]string{
		"active":   "active-secret-active-secret-active-secret-1",
		"previous": "previous-secret-previous-secret-previous-2",
		"older":    "older-secret-older-secret-older-secret-older3",
		"client":   "client-secret-0123456789",
		"db":       "db-pass-w0rd",
		"redis":    "redis-pass-w0rd",
	}
	d := &deployment{env: map[string]string{
		"AUTH_JWT_SECRET":            secrets["active"],
		"AUTH_JWT_PREVIOUS_SECRETS":  secrets["previous"] + "," + secrets["older"],
		"AUTH_INTROSPECTION_CLIENTS": "app:" + secrets["client"],
		"AUTH_DATABASE_DRIVER":       "mysql",
		"AUTH_DATABASE_DSN":          "authuser:" + secrets["db"] + "@tcp(db.internal:3306)/auth?parseTime=true",
		"AUTH_REDIS_URL":             "redis://cache:" + secrets["redis"] + "@redis.internal:6379/0",
		"AUTH_STRATEGY":              "session_table",
	}}
	out := d.must(t, "", "config", "check").out
	for name, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("config check prints the %s secret", name)
		}
	}
	for _, want := range []string{
		`jwt.secret = ****** (kid ` + strategy.KeyID([]byte(secrets["active"])) + `)`,
		`jwt.previous_secrets = [****** (kid ` + strategy.KeyID([]byte(secrets["previous"])) + `), ****** (kid ` + strategy.KeyID([]byte(secrets["older"])) + `)]`,
		`introspection.clients = [app:******]`,
		`database.dsn = "authuser:******@tcp(db.internal:3306)/auth?parseTime=true"`,
		`redis.url = "redis://cache:******@redis.internal:6379/0"`,
		`strategy = "session_table"`,
		`jwt.access_ttl = 15m0s`,
		"secrets: active kid " + strategy.KeyID([]byte(secrets["active"])) + " from jwt.secret, 2 previous",
		"the configuration is valid",
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want) {
			t.Errorf("config check does not print %q:\n%s", want, out)
		}
	}
	for _, k := range config.Keys() {
		if !strings.Contains(out, "\n"+k+" = ") && !strings.HasPrefix(out, k+" = ") {
			t.Errorf("config check does not print %s", k)
		}
	}

	t.Run("an invalid configuration exits non-zero and says why", func(t *testing.T) {
		cases := map[string]map[string]string{
			"unknown strategy":                 {"AUTH_STRATEGY": "bogus"},
			"jwt.secret must be at least 32":   {"AUTH_JWT_SECRET": "short"},
			"log.format must be text or json":  {"AUTH_LOG_FORMAT": "xml"},
			"log.level must be debug, info":    {"AUTH_LOG_LEVEL": "verbose"},
			"jwt.previous_secrets[0] must be ": {"AUTH_JWT_PREVIOUS_SECRETS": "short"},
		}
		for want, env := range cases {
			bad := &deployment{env: env}
			bad.mustFail(t, want, "config", "check")
		}
	})
}

// TestKeyRotationBinary rotates the secret file of a running deployment
// with the CLI: a token from before the rotation verifies after it, until
// the old secret is dropped; refresh tokens keep working throughout; a
// forged kid is rejected.
func TestKeyRotationBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "jwt_secret")
			// An empty AUTH_JWT_SECRET counts as unset: the secrets come
			// from the file.
			d := newDeployment(t, driver, map[string]string{"AUTH_JWT_SECRET": "", "AUTH_JWT_SECRET_FILE": file})
			d.mustFail(t, "does not exist", "keys", "list")
			d.mustFail(t, "does not exist", "keys", "rotate")

			srv := d.start(t)
			const ann = "ann@example.com"
			srv.Register(t, ann, testPassword)
			old := tokensFrom(t, login(t, srv, ann, testPassword))
			spare := tokensFrom(t, login(t, srv, ann, testPassword))
			k1 := kid(t, old.Access)
			if out := d.must(t, "", "keys", "list").out; !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k1) + `\s+active\s+jwt.secret_file`).MatchString(out) {
				t.Fatalf("keys list:\n%s", out)
			}
			secretBefore, _ := os.ReadFile(file)

			out := d.must(t, "", "keys", "rotate").out
			if !strings.Contains(out, "1 previous kept") || !strings.Contains(out, "restart every instance") {
				t.Fatalf("keys rotate: %q", out)
			}
			list := d.must(t, "", "keys", "list").out
			lines := strings.Split(strings.TrimSpace(list), "\n")
			if len(lines) != 3 || !strings.Contains(lines[1], "active") || !strings.Contains(lines[2], k1) || !strings.Contains(lines[2], "previous") {
				t.Fatalf("keys list after the rotation:\n%s", list)
			}
			k2 := strings.Fields(lines[1])[0]
			for _, l := range []string{list, out} {
				for _, s := range strings.Fields(string(secretBefore)) {
					if strings.Contains(l, s) {
						t.Fatal("a keys command printed a secret")
					}
				}
			}

			// The restart.
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			srv = d.start(t)
			if s := verifyStatus(t, srv, old.Access); s != http.StatusOK {
				t.Fatalf("a token signed before the rotation: %d, want 200", s)
			}
			fresh := tokensFrom(t, srv.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": old.Refresh}))
			if kid(t, fresh.Access) != k2 {
				t.Fatalf("a token issued after the rotation has kid %q, want %q", kid(t, fresh.Access), k2)
			}

			// Drop the old secret (the file's lines after the first) and
			// restart.
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			if err := os.WriteFile(file, []byte(first+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			srv = d.start(t)
			r := srv.Do(t, http.MethodGet, "/api/v1/auth/verify", old.Access, nil)
			if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "token_invalid") {
				t.Fatalf("a token of the dropped secret: %d %s, want 401 token_invalid", r.Status, r.Body)
			}
			if s := verifyStatus(t, srv, fresh.Access); s != http.StatusOK {
				t.Fatalf("a token of the active secret: %d", s)
			}
			// A changed header also breaks the signature, so this only
			// shows that an unknown kid is refused cleanly (401, not a
			// 5xx); routes' rotation test signs under an unknown kid.
			forged := strings.Split(fresh.Access, ".")
			forged[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"forged","typ":"JWT"}`))
			if s := verifyStatus(t, srv, strings.Join(forged, ".")); s != http.StatusUnauthorized {
				t.Fatalf("a forged kid: %d, want 401", s)
			}
			// A refresh token from before the rotation, never used.
			next := tokensFrom(t, srv.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": spare.Refresh}))
			if kid(t, next.Access) != k2 || verifyStatus(t, srv, next.Access) != http.StatusOK {
				t.Fatal("a refresh token from before the rotation did not give a working token under the new secret")
			}

			t.Run("rotate refuses when jwt.secret is set", func(t *testing.T) {
				set := newDeployment(t, driver, map[string]string{"AUTH_JWT_SECRET_FILE": file})
				set.mustFail(t, "jwt.secret is set", "keys", "rotate")
				after, _ := os.ReadFile(file)
				if first+"\n" != string(after) {
					t.Fatal("the refused rotation changed the file")
				}
			})
			t.Run("--keep 0 drops every previous secret", func(t *testing.T) {
				d.must(t, "", "keys", "rotate")
				out := d.must(t, "", "keys", "rotate", "--keep", "0").out
				if !strings.Contains(out, "0 previous kept") {
					t.Fatalf("output %q", out)
				}
				if l := strings.Split(strings.TrimSpace(d.must(t, "", "keys", "list").out), "\n"); len(l) != 2 {
					t.Fatalf("keys list after --keep 0: %v", l)
				}
			})
		})
	}
}

// TestOperatingBinary: the metrics listener and the request id, through
// the real binary.
func TestOperatingBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			metricsAddr := freePort(t)
			d := newDeployment(t, driver, map[string]string{"AUTH_METRICS_ADDR": metricsAddr, "AUTH_SERVER_TRUSTED_PROXIES": "127.0.0.1", "AUTH_LOG_FORMAT": "json"})
			srv := d.start(t)
			const ann = "ann@example.com"
			srv.Register(t, ann, testPassword)
			tok := tokensFrom(t, login(t, srv, ann, testPassword))
			login(t, srv, ann, "wrong password")
			for range 3 {
				verifyStatus(t, srv, tok.Access)
			}
			verifyStatus(t, srv, "garbage")
			srv.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil)

			t.Run("metrics on their own listener", func(t *testing.T) {
				body := get(t, "http://"+metricsAddr+"/metrics")
				for _, want := range []string{
					`authserver_logins_total{result="success"} 1`,
					`authserver_logins_total{result="invalid_credentials"} 1`,
					`authserver_token_verifications_total{result="ok"} 4`,
					`authserver_token_verifications_total{result="invalid"} 1`,
					`authserver_revocations_total{kind="logout"} 1`,
					`authserver_http_requests_total{code="200",method="GET",route="/api/v1/auth/verify"} 3`,
					`authserver_build_info{driver="` + driver + `",strategy="password_key",version=`,
					`go_goroutines `, `process_cpu_seconds_total `, `go_sql_open_connections{db_name="authserver"}`,
				} {
					if !strings.Contains(body, want) {
						t.Errorf("the scrape lacks %s", want)
					}
				}
				if strings.Contains(body, ann) || strings.Contains(body, tok.Access) {
					t.Error("the scrape holds an email or a token")
				}
				if r := srv.Do(t, http.MethodGet, "/metrics", "", nil); r.Status != http.StatusNotFound {
					t.Errorf("the API listener answers /metrics with %d", r.Status)
				}
			})

			t.Run("request id: header, log, error body", func(t *testing.T) {
				const id = "binary-trace-42"
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me", nil)
				req.Header.Set("X-Request-Id", id)
				req.Header.Set("Authorization", "Bearer garbage")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.Header.Get("X-Request-Id") != id || !strings.Contains(string(b), `"request_id":"`+id+`"`) {
					t.Fatalf("header %q, body %s", res.Header.Get("X-Request-Id"), b)
				}
				// The log is flushed every 100ms.
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(srv.Log(), `"request_id":"`+id+`"`) {
					if time.Now().After(deadline) {
						t.Fatalf("the id is not in the server's log:\n%s", srv.Log())
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		})
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
