// Package binarytest runs the real authserver binary in tests: built once
// per test process from this module's source, started on a free loopback
// port with AUTH_* settings and a fresh database, and stopped when the test
// ends. Use it when what is under test is the program as shipped (the
// process, its flags and environment, its real HTTP server) or something
// that talks to it over the network (client middleware, reverse proxies,
// several instances on one database). In-process router tests should keep
// using the routes harness: it is faster and has an injectable clock.
//
//	srv := binarytest.Start(t, binarytest.Options{
//		Driver: "sqlite",
//		Env:    map[string]string{"AUTH_STRATEGY": "single_device"},
//	})
//	srv.Register(t, "ann@example.com", "correct horse battery")
//	tok := srv.Login(t, "ann@example.com", "correct horse battery").Access
//	r := srv.Do(t, "GET", "/api/v1/auth/verify", tok, nil)
//
// Name: binarytest follows net/http/httptest and testing/fstest; it is the
// binary, not a handler, that it puts under test.
package binarytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/revocable/authserver/models/dbtest"
)

// Secret is the AUTH_JWT_SECRET every server gets unless Options.Env sets
// another: servers started by one test on the same database accept each
// other's tokens, as instances of one deployment do.
const Secret = "binarytest-secret-binarytest-secret-0123456789"

const (
	// readyTimeout bounds start-up: building is done by then, but a race
	// build on a loaded 2-core CI machine migrating MySQL can take seconds.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before it kills.
	stopTimeout = 15 * time.Second
	// maxLog bounds the captured log (stdout and stderr together).
	maxLog = 8 << 20
)

// Options say how to start the server. The zero value is a password_key
// server on a fresh SQLite database.
type Options struct {
	// Driver is the database: "sqlite" (the default), "mysql" or
	// "postgres", which skip the test when AUTH_TEST_MYSQL_DSN
	// (AUTH_TEST_POSTGRES_DSN) is not set. A fresh database
	// is created for the test unless Env sets AUTH_DATABASE_DSN (to share
	// one database between servers, create it with dbtest.DSN and pass it
	// to each).
	Driver string
	// Env sets environment variables of the process, over the defaults:
	// AUTH_STRATEGY=password_key, AUTH_JWT_SECRET=Secret,
	// AUTH_PASSWORD_BCRYPT_COST=4, AUTH_COOKIES_SECURE=false and the
	// database. AUTH_SERVER_ADDR is always a free loopback port. AUTH_*
	// variables of the test's own environment are not passed on.
	// Everything else is as shipped, rate limits included (e.g. 10
	// registrations per hour per IP): a test that registers more users
	// raises them here (AUTH_RATELIMIT_REGISTER_PER_IP=0).
	Env map[string]string
	// Args are the command-line arguments; none means the default command,
	// serve. The working directory is an empty temporary directory, so the
	// repository's config.yaml is not read unless Args name it.
	Args []string
}

// Server is one running authserver process.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:34567.
	URL string
	// Addr is the host:port it listens on.
	Addr string

	cmd      *exec.Cmd
	log      *logBuffer
	done     chan struct{} // closed when the process has exited
	waitErr  error         // the process's exit status; set before done closes
	stopOnce sync.Once
	stopping atomic.Bool // Stop was called
	stopErr  error
	client   *http.Client
}

// Start builds the binary if this test process has not yet, starts it, and
// returns once GET /readyz answers 200. It fails the test if the server
// does not get ready; the server is stopped at the end of the test, and
// the test fails if the process had exited on its own, or exits non-zero
// (a data race in a -race build does). On failure the server's log is
// printed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	env := baseEnv(t, o)
	dir := t.TempDir()
	// The port is picked before the process binds it, so another process
	// may take it in between: start again on a new one when that happens.
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		s := launch(t, bin, dir, addr, env, o.Args)
		err := s.waitReady()
		if err == nil {
			t.Cleanup(func() { s.cleanup(t) })
			return s
		}
		_ = s.Stop()
		lastLog = s.Log()
		if !strings.Contains(lastLog, "address already in use") {
			t.Fatalf("binarytest: authserver did not get ready: %v\n--- server log ---\n%s", err, lastLog)
		}
	}
	t.Fatalf("binarytest: no free port after 3 attempts\n--- server log ---\n%s", lastLog)
	return nil
}

func launch(t testing.TB, bin, dir, addr string, env, args []string) *Server {
	t.Helper()
	s := &Server{
		URL:    "http://" + addr,
		Addr:   addr,
		log:    &logBuffer{},
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second},
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Env = append(env, "AUTH_SERVER_ADDR="+addr)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("binarytest: start %s: %v", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	return s
}

// waitReady polls GET /readyz until it answers 200, the process exits, or
// readyTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("the process exited: %v", s.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /readyz did not answer 200 within %s", readyTimeout)
		}
		select {
		case <-s.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log returns what the process has written to stdout and stderr so far.
func (s *Server) Log() string { return s.log.String() }

// Stop stops the server: SIGTERM (it shuts down gracefully), then SIGKILL
// if it has not exited within 15 seconds. It returns the process's exit
// error, nil after a clean shutdown. It may be called more than once, and
// again at cleanup.
func (s *Server) Stop() error {
	s.stopping.Store(true)
	s.stopOnce.Do(func() {
		// A test may have paused the server: continue it so that it can
		// act on SIGTERM.
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			s.stopErr = s.waitErr
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = fmt.Errorf("did not exit within %s of SIGTERM, killed", stopTimeout)
		}
		s.client.CloseIdleConnections()
	})
	return s.stopErr
}

// Pause makes the server hang: it stops the process (SIGSTOP) and returns
// once every thread of it is stopped, so that no request sent afterwards
// is answered. The kernel still accepts connections; nothing answers them.
// That is how a test sees timeouts against the real server. Linux only
// (it reads /proc).
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("binarytest: SIGSTOP: %v", err)
	}
	// kill(2) returns before the threads have stopped.
	deadline := time.Now().Add(10 * time.Second)
	for !s.allStopped(t) {
		if time.Now().After(deadline) {
			t.Fatal("binarytest: the server did not stop within 10s of SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume lets a paused server go on (SIGCONT). Stop resumes it too.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("binarytest: SIGCONT: %v", err)
	}
}

// allStopped reports whether every thread of the process is in state T
// (stopped) according to /proc/<pid>/task/*/stat.
func (s *Server) allStopped(t testing.TB) bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("binarytest: Pause needs /proc: %v", err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread has exited
		}
		// pid (comm) state ...: comm may hold spaces and parentheses,
		// the state follows the last ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false
		}
	}
	return true
}

func (s *Server) cleanup(t testing.TB) {
	select {
	case <-s.done:
		if !s.stopping.Load() {
			t.Errorf("binarytest: authserver exited during the test: %v\n--- server log ---\n%s", s.waitErr, s.Log())
			return
		}
	default:
	}
	if err := s.Stop(); err != nil {
		t.Errorf("binarytest: authserver: %v\n--- server log ---\n%s", err, s.Log())
		return
	}
	if t.Failed() {
		t.Logf("--- authserver log ---\n%s", s.Log())
	}
}

// Response is an answer of the server.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("binarytest: answer is not JSON (%v): %q", err, r.Body)
	}
}

// Do sends one request: path is below URL (e.g. /api/v1/me), token, when
// not empty, goes in Authorization: Bearer, and body, when not nil, is
// sent as JSON. It fails the test only if the request cannot be made.
func (s *Server) Do(t testing.TB, method, path, token string, body any) *Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("binarytest: marshal: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("binarytest: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("binarytest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("binarytest: %s %s: read answer: %v", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// want sends a request and fails the test unless the status is status.
func (s *Server) want(t testing.TB, status int, method, path, token string, body any) *Response {
	t.Helper()
	r := s.Do(t, method, path, token, body)
	if r.Status != status {
		t.Fatalf("binarytest: %s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}

// Register creates an account and returns its user id.
func (s *Server) Register(t testing.TB, email, password string) string {
	t.Helper()
	r := s.want(t, http.StatusCreated, http.MethodPost, "/api/v1/auth/register", "",
		map[string]string{"email": email, "password": password})
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	r.JSON(t, &out)
	if out.User.ID == "" {
		t.Fatalf("binarytest: register: no user id in %s", r.Body)
	}
	return out.User.ID
}

// Tokens are what a login hands out.
type Tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// Login logs in and returns the tokens.
func (s *Server) Login(t testing.TB, email, password string) Tokens {
	t.Helper()
	r := s.want(t, http.StatusOK, http.MethodPost, "/api/v1/auth/login", "",
		map[string]string{"email": email, "password": password, "device_name": "binarytest"})
	var tok Tokens
	r.JSON(t, &tok)
	if tok.Access == "" || tok.Refresh == "" {
		t.Fatalf("binarytest: login: no tokens in %s", r.Body)
	}
	return tok
}

// baseEnv is the process environment: the test's own minus AUTH_*, then
// the defaults, then o.Env.
func baseEnv(t testing.TB, o Options) []string {
	t.Helper()
	set := map[string]string{
		"AUTH_STRATEGY":             "password_key",
		"AUTH_JWT_SECRET":           Secret,
		"AUTH_PASSWORD_BCRYPT_COST": "4",
		"AUTH_COOKIES_SECURE":       "false",
	}
	if _, ok := o.Env["AUTH_DATABASE_DSN"]; !ok {
		driver := o.Driver
		if driver == "" {
			driver = "sqlite"
		}
		driver, dsn := dbtest.DSN(t, driver)
		set["AUTH_DATABASE_DRIVER"] = driver
		set["AUTH_DATABASE_DSN"] = dsn
	} else if o.Driver != "" {
		set["AUTH_DATABASE_DRIVER"] = o.Driver
	}
	for k, v := range o.Env {
		set[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTH_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("binarytest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// build is the one build of this test process. It is package state on
// purpose, the only such here: the binary is the same for every test of
// the process, and building it per test would cost seconds each.
var build = sync.OnceValues(buildBinary)

// Binary returns the path of the authserver binary built from this
// module's source (with -race when the tests run with -race), building it
// on the first call of the test process. Use it directly to run commands
// that are not a long-running server (exec.Command(binarytest.Binary(t),
// "compare", ...)).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := build()
	if err != nil {
		t.Fatalf("binarytest: %v", err)
	}
	return path
}

// buildBinary runs go build into a directory shared by the test processes
// of this checkout (so that repeated runs do not fill the temp directory),
// through a temporary name and an atomic rename, since go test runs
// packages in parallel.
func buildBinary() (string, error) {
	gobin, err := goTool()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the module")
	}
	root := filepath.Dir(gomod)
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "authserver-binarytest-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	name := "authserver"
	args := []string{"build"}
	if raceEnabled {
		name += "-race"
		args = append(args, "-race")
	}
	tmp := filepath.Join(dir, name+".tmp"+strconv.Itoa(os.Getpid()))
	args = append(args, "-o", tmp, "./cmd/authserver")
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return final, nil
}

// goTool finds the go command: on PATH, else in the GOROOT the tests were
// built with.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the go command is neither on PATH nor in %s", filepath.Dir(p))
	}
	return p, nil
}

// logBuffer collects the process output; the process writes it from
// exec's copying goroutines while the test reads it.
type logBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxLog - l.b.Len(); len(p) > room {
		l.b.Write(p[:max(room, 0)])
		l.truncated = true
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[log truncated]\n"
	}
	return l.b.String()
}
