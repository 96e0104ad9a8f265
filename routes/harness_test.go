package routes_test

// The fixture every routes test uses: a real router on a real database
// (SQLite, and MySQL when AUTH_TEST_MYSQL_DSN is set), driven through
// ServeHTTP, with a clock the test moves instead of sleeping.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/clock"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// testSecret is the server secret of every test server.
var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

// newClock is a test clock: it stands still until Advance.
func newClock() *clock.Manual { return clock.NewManual(time.Now().UTC().Truncate(time.Millisecond)) }

// env is one running server.
type env struct {
	t       testing.TB
	driver  string
	name    string
	cfg     *config.Config
	db      *gorm.DB
	srv     *authserver.Server
	tokens  *strategy.Service
	handler http.Handler
	clock   *clock.Manual
	mailer  *mailbox.Mailbox
	// verifier, when set, is a second instance on the same database that
	// answers every GET /api/v1/auth/verify (see addVerifier).
	verifier *authserver.Server
}

// addVerifier starts a second instance on e's database, with a cache of
// its own and the same secret and clock, and sends every verification to
// it after it has read the invalidation outbox: what any instance knows
// once cache.max_staleness has passed, without Redis.
func (e *env) addVerifier() {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.verifier = startServer(e.t, authserver.Options{Config: e.cfg, DB: e.db, Secret: testSecret, Log: log, Mailer: e.mailer, Now: e.clock.Now})
}

// newEnv starts a server of the named strategy on a fresh database of the
// driver. opts adjust the configuration first.
func newEnv(t testing.TB, driver, name string, opts ...func(*config.Config)) *env {
	t.Helper()
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.Cookies.Secure = true
	// Every request of the harness comes from one IP and the race tests
	// send 50 at once: the abuse controls are off unless a test turns
	// them on (see abuse_test.go).
	cfg.NoLimits()
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	db := dbtest.Open(t, driver)
	clk := newClock()
	mailer := &mailbox.Mailbox{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := startServer(t, authserver.Options{Config: cfg, DB: db, Secret: testSecret, Log: log, Mailer: mailer, Now: clk.Now})
	return &env{t: t, driver: driver, name: name, cfg: cfg, db: db, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: clk, mailer: mailer}
}

// startServer assembles a server, reads the invalidation outbox once (so
// its cache is trusted from the first request) and runs its background
// work until the test ends.
func startServer(t testing.TB, o authserver.Options) *authserver.Server {
	t.Helper()
	ctx := context.Background()
	srv, err := authserver.New(ctx, o)
	if err != nil {
		t.Fatalf("authserver.New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("first outbox read: %v", err)
	}
	return srv
}

// matrix runs fn for every strategy on every test database.
func matrix(t *testing.T, fn func(t *testing.T, driver, name string)) {
	for _, driver := range dbtest.Drivers() {
		for _, name := range strategy.Names() {
			t.Run(driver+"/"+name, func(t *testing.T) { fn(t, driver, name) })
		}
	}
}

// onDrivers runs fn on every test database.
func onDrivers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) { fn(t, driver) })
	}
}

// resp is an answer of the server.
type resp struct {
	Code   int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// errCode is the error code of an error answer, "" otherwise.
func (r *resp) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r *resp) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// cookie returns the Set-Cookie of the given name, or nil.
func (r *resp) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// req is one request: a body (any JSON value, or a string sent as is),
// a bearer token and extra headers. peer is the address the request comes
// from (host:port); "" is 192.0.2.10:1234.
type req struct {
	method, path string
	token        string
	body         any
	header       map[string]string
	cookies      []*http.Cookie
	peer         string
}

func (e *env) send(r req) *resp {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			// Errorf, not Fatalf: concurrency tests call send from
			// goroutines, where FailNow is not allowed.
			e.t.Errorf("marshal: %v", err)
			return &resp{}
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	hr.RemoteAddr = "192.0.2.10:1234"
	if r.peer != "" {
		hr.RemoteAddr = r.peer
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	w := httptest.NewRecorder()
	if e.verifier != nil && r.path == "/api/v1/auth/verify" {
		ctx := context.Background()
		if err := e.verifier.PollOutbox(ctx); err != nil {
			e.t.Errorf("the verifying instance could not read the outbox: %v", err)
		}
		e.verifier.Handler().ServeHTTP(w, hr)
		// What it noted of last_seen_at reaches the database within a
		// second; the next request comes "later".
		e.verifier.Tokens().FlushTouches(ctx)
	} else {
		e.handler.ServeHTTP(w, hr)
	}
	if r.path == "/api/v1/auth/password-reset" && w.Code == http.StatusAccepted {
		// The token row and the mail are made off the request path;
		// the test reads the mail next.
		if err := e.srv.WaitResets(context.Background()); err != nil {
			e.t.Errorf("waiting for the reset queue: %v", err)
		}
	}
	out := &resp{Code: w.Code, Header: w.Header(), Raw: w.Body.Bytes()}
	if len(out.Raw) > 0 {
		if err := json.Unmarshal(out.Raw, &out.Body); err != nil {
			e.t.Errorf("%s %s: answer is not a JSON object: %q", r.method, r.path, out.Raw)
		}
	}
	e.checkAnswer(hr, out) // against the OpenAPI document
	return out
}

// do sends a request and fails the test unless the status is want.
func (e *env) do(want int, r req) *resp {
	e.t.Helper()
	out := e.send(r)
	if out.Code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", r.method, r.path, out.Code, want, out.Raw)
	}
	return out
}

const password = "correct horse battery"

// register creates an account and returns its id.
func (e *env) register(email string) string {
	e.t.Helper()
	r := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": email, "password": password}})
	u, _ := r.Body["user"].(map[string]any)
	id, _ := u["id"].(string)
	if id == "" {
		e.t.Fatalf("register: no user id in %s", r.Raw)
	}
	return id
}

// session is what a login hands a client.
type session struct {
	access, refresh string
	loginID         string
}

func (e *env) login(email, device string) session {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email, "password": password, "device_name": device}})
	return e.sessionOf(r)
}

// sessionOf reads the tokens of a login-shaped answer.
func (e *env) sessionOf(r *resp) session {
	e.t.Helper()
	s := session{access: r.str("access_token"), refresh: r.str("refresh_token")}
	if s.access == "" || s.refresh == "" {
		e.t.Fatalf("no tokens in %s", r.Raw)
	}
	v := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/auth/verify", token: s.access})
	s.loginID = v.str("sid")
	return s
}

// verify returns the status GET /api/v1/auth/verify gives the token.
func (e *env) verify(token string) int {
	e.t.Helper()
	return e.send(req{method: "GET", path: "/api/v1/auth/verify", token: token}).Code
}

// wantVerify fails the test unless the token gets the status.
func (e *env) wantVerify(what, token string, want int) {
	e.t.Helper()
	if got := e.verify(token); got != want {
		e.t.Fatalf("%s: verify answered %d, want %d", what, got, want)
	}
}

func (e *env) caps() strategy.Capabilities {
	e.t.Helper()
	ts, err := strategy.Build(e.name, strategy.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return strategy.CapabilitiesOf(ts)
}

func (e *env) count(model any, where string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Model(model).Where(where, args...).Count(&n).Error; err != nil {
		e.t.Fatalf("count: %v", err)
	}
	return n
}

// together runs fn(0) … fn(n-1) in n goroutines released at the same
// moment, and waits for all of them: the shape of every race test.
func together(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func email(i int) string { return fmt.Sprintf("user%d@example.com", i) }
