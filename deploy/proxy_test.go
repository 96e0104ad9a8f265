// Package deploy_test runs the shipped reverse-proxy configurations
// (deploy/nginx, deploy/caddy) with the real nginx and caddy binaries in
// front of a recording test app, with the real authserver binary deciding,
// on every test database. This directory holds configuration, not Go code:
// the package has only this test.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/models/dbtest"
)

const password = "correct horse battery"

// methods are the methods sent through the proxies: a POST (or any other
// method) must be checked exactly like a GET.
var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// proxy starts one reverse proxy in front of app, asking auth, and returns
// its base URL.
type proxy struct {
	name  string
	bin   string // default path of the binary (Debian's)
	start func(t *testing.T, bin, auth, app string) string
}

var proxies = []proxy{
	{"nginx", "/usr/sbin/nginx", startNginx},
	{"caddy", "/usr/bin/caddy", startCaddy},
}

func TestProxies(t *testing.T) {
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			bin := findBinary(t, p.name, p.bin)
			for _, driver := range dbtest.Drivers() {
				t.Run(driver, func(t *testing.T) { testProxy(t, p, bin, driver) })
			}
		})
	}
}

// testProxy checks the forward-auth contract through one proxy:
//   - a valid token reaches the app with X-Auth-User-Id set to its user;
//   - a missing, bad or revoked token gets 401 and never reaches the app;
//   - an X-Auth-User-Id sent by the client never reaches the app;
//   - every method, POST included, is treated like a GET;
//   - with authserver down, nothing reaches the app (fail closed).
func testProxy(t *testing.T, p proxy, bin, driver string) {
	// single_device: a logout revokes the access token at once.
	auth := binarytest.Start(t, binarytest.Options{Driver: driver, Env: map[string]string{"AUTH_STRATEGY": "single_device"}})
	uid := auth.Register(t, "ann@example.com", password)
	valid := auth.Login(t, "ann@example.com", password).Access
	auth.Register(t, "bob@example.com", password)
	revoked := auth.Login(t, "bob@example.com", password).Access
	if r := auth.Do(t, http.MethodPost, "/api/v1/auth/logout", revoked, nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}

	app := newApp(t)
	base := p.start(t, bin, auth.Addr, app.addr())

	cases := []struct {
		name   string
		auth   string // Authorization header; "" sends none
		spoof  bool   // send X-Auth-User-Id: 999999 (and X_Auth_User_Id) too
		status int
	}{
		{"valid", "Bearer " + valid, false, http.StatusOK},
		{"valid, spoofed user", "Bearer " + valid, true, http.StatusOK},
		{"missing", "", false, http.StatusUnauthorized},
		{"missing, spoofed user", "", true, http.StatusUnauthorized},
		{"bad", "Bearer not.a.token", false, http.StatusUnauthorized},
		{"bad, spoofed user", "Bearer not.a.token", true, http.StatusUnauthorized},
		{"revoked", "Bearer " + revoked, false, http.StatusUnauthorized},
		{"revoked, spoofed user", "Bearer " + revoked, true, http.StatusUnauthorized},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range methods {
				app.reset()
				body := `{"note":"hello"}`
				req, err := http.NewRequest(m, base+"/notes/1?x=y", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				if tc.spoof {
					req.Header.Set("X-Auth-User-Id", "999999")
					// Apps behind CGI-style gateways (PHP, WSGI) read
					// X_Auth_User_Id as the same header.
					req.Header.Set("X_Auth_User_Id", "999999")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d: %s", m, resp.StatusCode, tc.status, got)
					continue
				}
				seen := app.requests()
				if tc.status != http.StatusOK {
					if len(seen) != 0 {
						t.Errorf("%s: a %d reached the app: %+v", m, resp.StatusCode, seen)
					}
					if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
						t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", m, ch)
					}
					if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
						t.Errorf("%s: a %d with Cache-Control %q, want no-store", m, resp.StatusCode, cc)
					}
					if tc.auth != "" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
						t.Errorf("%s: WWW-Authenticate %q, want error=\"invalid_token\"", m, resp.Header.Get("WWW-Authenticate"))
					}
					continue
				}
				if len(seen) != 1 {
					t.Errorf("%s: the app saw %d requests, want 1", m, len(seen))
					continue
				}
				s := seen[0]
				if s.method != m || s.uri != "/notes/1?x=y" {
					t.Errorf("%s: the app got %s %s, want %s /notes/1?x=y", m, s.method, s.uri, m)
				}
				if len(s.userIDs) != 1 || s.userIDs[0] != uid {
					t.Errorf("%s: the app got X-Auth-User-Id %q, want exactly [%s]", m, s.userIDs, uid)
				}
				if len(s.underscored) != 0 {
					t.Errorf("%s: the app got X_Auth_User_Id %q, want none", m, s.underscored)
				}
				if m != http.MethodHead && m != http.MethodGet && m != http.MethodOptions && s.body != body {
					t.Errorf("%s: the app got the body %q, want %q", m, s.body, body)
				}
			}
		})
	}

	t.Run("authserver down", func(t *testing.T) {
		if err := auth.Stop(); err != nil {
			t.Fatal(err)
		}
		app.reset()
		for _, m := range methods {
			req, _ := http.NewRequest(m, base+"/notes/1", nil)
			req.Header.Set("Authorization", "Bearer "+valid)
			req.Header.Set("X-Auth-User-Id", uid)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			resp.Body.Close()
			if resp.StatusCode < 500 || resp.StatusCode > 599 {
				t.Errorf("%s: status %d with authserver down, want 5xx", m, resp.StatusCode)
			}
		}
		if seen := app.requests(); len(seen) != 0 {
			t.Errorf("with authserver down the app was reached: %+v", seen)
		}
	})
}

// app is the protected test app: it records every request that reaches it.
type app struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	method, uri, body string
	userIDs           []string
	underscored       []string // X_Auth_User_Id
}

func newApp(t *testing.T) *app {
	a := &app{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		a.mu.Lock()
		a.seen = append(a.seen, seen{method: r.Method, uri: r.RequestURI, body: string(b), userIDs: r.Header.Values("X-Auth-User-Id"), underscored: r.Header.Values("X_Auth_User_Id")})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "the app")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) addr() string { return a.srv.Listener.Addr().String() }

func (a *app) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = nil
}

func (a *app) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.seen...)
}

// findBinary returns the proxy binary: on PATH, else at Debian's path. It
// skips the test, saying so, only when neither exists (CI installs both).
func findBinary(t *testing.T, name, debian string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Skipf("%s is not installed (apt-get install %s): the %s configuration is not tested", name, name, name)
	return ""
}

// startNginx runs deploy/nginx/nginx.conf.template with its placeholders
// filled in, as envsubst would.
func startNginx(t *testing.T, bin, auth, app string) string {
	tmpl, err := os.ReadFile(filepath.Join("nginx", "nginx.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Test-only: keep nginx's temporary files in dir, not in the
	// system's /var/lib/nginx (which nginx, started as root, would chown).
	var temps strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", k, filepath.Join(dir, k))
	}
	global := "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"
	if os.Geteuid() == 0 {
		// As root nginx would run its workers as nobody, who cannot
		// enter the test's private temporary directory.
		global += " user root;"
	}
	return startProxy(t, "nginx", func(listen string) *exec.Cmd {
		conf := strings.NewReplacer("${LISTEN}", listen, "${AUTH_SERVER}", auth, "${UPSTREAM}", app).Replace(string(tmpl))
		if strings.Contains(conf, "${") {
			t.Fatalf("a placeholder is left in the nginx configuration:\n%s", conf)
		}
		if !strings.Contains(conf, "\nhttp {\n") {
			t.Fatal("nginx.conf.template has no `http {` line")
		}
		conf = strings.Replace(conf, "\nhttp {\n", "\nhttp {\n"+temps.String(), 1)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return exec.Command(bin, "-p", dir+"/", "-c", path, "-e", "stderr", "-g", global)
	})
}

// startCaddy runs deploy/caddy/Caddyfile; Caddy itself fills in its
// {$NAME} placeholders from the environment.
func startCaddy(t *testing.T, bin, auth, app string) string {
	path, err := filepath.Abs(filepath.Join("caddy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return startProxy(t, "caddy", func(listen string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(),
			"SITE_ADDRESS=http://"+listen, "AUTH_SERVER="+auth, "UPSTREAM="+app, "CADDY_ADMIN=off",
			// Caddy keeps state under these; not in the user's home.
			"HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
		return cmd
	})
}

// startProxy starts the command that command builds for a free loopback
// address, waits until the address accepts connections, and stops the
// process at the end of the test. The port is picked before the proxy
// binds it, so it tries again on another port if it was taken meanwhile.
func startProxy(t *testing.T, name string, command func(listen string) *exec.Cmd) string {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		listen := freeAddr(t)
		cmd := command(listen)
		var log lockedBuffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		err := waitListening(listen, done)
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("--- %s log ---\n%s", name, log.String())
				}
			})
			return "http://" + listen
		}
		stop()
		if !strings.Contains(strings.ToLower(log.String()), "address already in use") {
			t.Fatalf("%s did not start: %v\n--- %s log ---\n%s", name, err, name, log.String())
		}
	}
	t.Fatalf("%s: no free port after 3 attempts", name)
	return ""
}

func waitListening(addr string, done <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not listening after 30s")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
