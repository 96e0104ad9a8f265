package js_test

// The browser client in real Chromium (Debian's, driven by chromedp as the
// demo test drives it) against the real server, assembled by
// authserver.New and listening on a real port, on SQLite (and MySQL when
// AUTH_TEST_MYSQL_DSN is set): six tabs of one browser share one session.
//
// AUTHCLIENT_SOAK is the length of the six-tab runs (default 12s, two of
// them: CI's two cores; the numbers come from AUTHCLIENT_SOAK=60s).
// AUTHCLIENT_CHROMIUM overrides the browser's path.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models/dbtest"
)

const (
	accessTTL = 5 * time.Second
	password  = "correct horse battery"
	tabs      = 6
	// lockTimeout is the page's lockTimeoutMs: a frozen tab holding the
	// refresh lock blocks the others this long at most.
	lockTimeout = 2 * time.Second
)

// page is the app of the test: the client served by the server, six
// knobs in the query string (skew in ms, lock timeout), and T, what the
// test reads.
const testPage = `<!doctype html><meta charset="utf-8"><title>authclient test</title>
<script type="module">
const q = new URLSearchParams(location.search);
const skew = Number(q.get("skew") || 0);
if (skew) { const real = Date.now; Date.now = () => real() + skew; }
const base = q.get("base") || "/api/v1";
const { createClient } = await import(base + "/client.js");
const wall = () => performance.timeOrigin + performance.now();
const c = createClient({ baseUrl: base, mode: q.get("mode") || "cookie", lockTimeoutMs: Number(q.get("lock") || 10000) });
const T = window.T = { c, calls: 0, fails: [], events: [], signedOutAt: 0, refreshedEvents: 0, dead: [] };
for (const ev of ["INITIAL_SESSION", "SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT"]) {
  c.on(ev, (p) => {
    T.events.push(ev + (p && p.reason ? ":" + p.reason : ""));
    if (ev === "SIGNED_OUT") T.signedOutAt = wall();
  });
}
T.wall = wall;
T.lockName = "authserver:" + new URL(base + "/", location.href).href + ":refresh";
// loop calls a protected route every 'every' ms for 'ms' ms, or until
// signed out when untilOut; it resolves to the number of calls.
T.loop = async (ms, every, untilOut) => {
  const end = wall() + ms;
  let n = 0;
  while (wall() < end) {
    if (untilOut && c.state() === "signed_out") break;
    n++;
    T.calls++;
    try {
      const r = await c.fetch(base + "/auth/verify");
      if (r.status === 401) T.dead.push(c.state() + "@" + Math.round(wall()));
      if (r.status !== 200 && !untilOut) T.fails.push(r.status + " " + (await r.text()).slice(0, 120));
    } catch (e) {
      if (!untilOut) T.fails.push(String(e));
    }
    await new Promise((r) => setTimeout(r, every));
  }
  return n;
};
T.restored = c.restore();
T.restored.then((s) => { T.initial = s; });
T.ready = true;
</script>`

// counter wraps the server: it counts refreshes by status, the requests
// that carried a token the server refused, and keeps every JSON answer of
// the auth routes so that the test can look for a refresh token in them.
type counter struct {
	mu        sync.Mutex
	refreshes map[int]int
	reused    int
	refused   atomic.Int64
	leaked    []string
}

type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }
func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &recorder{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, req)
		body := rec.buf.String()
		c.mu.Lock()
		defer c.mu.Unlock()
		if req.URL.Path == "/api/v1/auth/refresh" {
			c.refreshes[rec.status]++
			if strings.Contains(body, "refresh_token_reused") {
				c.reused++
			}
		}
		if req.URL.Path == "/api/v1/auth/verify" && rec.status == http.StatusUnauthorized && req.Header.Get("Authorization") != "" {
			c.refused.Add(1)
		}
		if strings.HasPrefix(req.URL.Path, "/api/v1/auth/") && strings.Contains(body, `"refresh_token"`) {
			c.leaked = append(c.leaked, req.URL.Path+": "+body)
		}
	})
}

func (c *counter) ok() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshes[http.StatusOK]
}

func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(testPage))
}

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

type fixture struct {
	url   string
	srv   *authserver.Server
	count *counter
	email string
	// offline cuts every API connection.
	offline atomic.Bool
}

func startServer(t *testing.T, driver string, opts ...func(*config.Config)) *fixture {
	t.Helper()
	cfg := config.Defaults()
	cfg.Strategy = "session_table"
	cfg.Password.BcryptCost = 4
	cfg.Cookies.Secure = false // plain HTTP on 127.0.0.1
	cfg.JWT.AccessTTL = accessTTL
	cfg.NoLimits()
	for _, o := range opts {
		o(cfg)
	}
	srv, err := authserver.New(context.Background(), authserver.Options{
		Config: cfg, DB: dbtest.Open(t, driver), Secret: bytes.Repeat([]byte("k"), 32),
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(); _ = srv.Close() })
	c := &counter{refreshes: map[int]int{}}
	mux := http.NewServeMux()
	f := &fixture{srv: srv, count: c, email: "tabs@example.com"}
	api := c.wrap(srv.Handler())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.offline.Load() {
			panic(http.ErrAbortHandler) // the connection is cut
		}
		api.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/app", servePage)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	if _, err := srv.CreateUser(context.Background(), f.email, password); err != nil {
		t.Fatal(err)
	}
	return f
}

// browser starts Chromium with the flags of the demo test; throttle keeps
// Chromium's own background-timer throttling (chromedp turns it off by
// default), which is what a user's browser does.
func browser(t *testing.T, throttle bool) context.Context {
	t.Helper()
	exe := os.Getenv("AUTHCLIENT_CHROMIUM")
	if exe == "" {
		exe = "/usr/bin/chromium"
	}
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no Chromium at %s", exe)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if throttle {
		// false removes the flag: Chromium throttles as it does for users.
		opts = append(opts,
			chromedp.Flag("disable-background-timer-throttling", false),
			chromedp.Flag("disable-backgrounding-occluded-windows", false),
			chromedp.Flag("disable-renderer-backgrounding", false),
		)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	b, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(cancelB)
	if err := chromedp.Do(b); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

// openTab opens the app in a new tab of parent's browser context (or of
// a new context, a second device, when newContext).
func openTab(t *testing.T, parent context.Context, url string, newContext bool) context.Context {
	t.Helper()
	var opts []chromedp.ContextOption
	if newContext {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	load(t, ctx, url)
	return ctx
}

func load(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.T && window.T.ready && window.T.initial !== undefined`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the page did not restore its session: %v", err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func soak() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("AUTHCLIENT_SOAK")); err == nil && d >= 2*accessTTL {
		return d
	}
	return 12 * time.Second
}

// signedInTabs signs in in the first tab and opens the others, with the
// given skews (ms) in their query strings.
func signedInTabs(t *testing.T, b context.Context, f *fixture, skews []int) []context.Context {
	t.Helper()
	all := []context.Context{b}
	load(t, b, fmt.Sprintf("%s/app?lock=%d&skew=%d", f.url, lockTimeout.Milliseconds(), skews[0]))
	out := eval[map[string]any](t, b, fmt.Sprintf(`T.c.signIn({email: %q, password: %q, deviceName: "tabs"})`, f.email, password))
	if u, _ := out["user"].(map[string]any); u == nil || u["email"] != f.email {
		t.Fatalf("signIn answered %v", out)
	}
	for i := 1; i < len(skews); i++ {
		ctx := openTab(t, b, fmt.Sprintf("%s/app?lock=%d&skew=%d", f.url, lockTimeout.Milliseconds(), skews[i]), false)
		if s := eval[string](t, ctx, `T.c.state()`); s != "signed_in" {
			t.Fatalf("tab %d restored %q, want signed_in", i, s)
		}
		all = append(all, ctx)
	}
	return all
}

// loopAll runs T.loop in every tab at once and returns the pages' failures.
func loopAll(t *testing.T, ctxs []context.Context, d time.Duration, untilOut bool) []string {
	t.Helper()
	var wg sync.WaitGroup
	fails := make([][]string, len(ctxs))
	for i, ctx := range ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Bounded: a stuck client fails the test instead of hanging it.
			lctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			defer cancel()
			if _, err := chromedp.Run(lctx, chromedp.Evaluate[float64](fmt.Sprintf(`T.loop(%d, 200, %v)`, d.Milliseconds(), untilOut), chromedp.EvalAwaitPromise)); err != nil {
				t.Errorf("tab %d: the call loop did not finish: %v", i, err)
			}
			fails[i] = eval[[]string](t, ctx, `T.fails`)
		}()
	}
	wg.Wait()
	var all []string
	for i, f := range fails {
		for _, x := range f {
			all = append(all, fmt.Sprintf("tab %d: %s", i, x))
		}
	}
	return all
}

func TestBrowserTabs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	d := soak()
	for _, throttle := range []bool{false, true} {
		name := "throttling flags on"
		if throttle {
			name = "throttling flags off (Chromium throttles, as for users)"
		}
		t.Run(name, func(t *testing.T) {
			f := startServer(t, "sqlite")
			b := browser(t, throttle)
			// Two tabs with the clock 10 minutes ahead, two 10 minutes behind.
			ctxs := signedInTabs(t, b, f, []int{0, 0, 600000, 600000, -600000, -600000})
			before := f.count.ok()
			start := time.Now()
			fails := loopAll(t, ctxs, d, false)
			elapsed := time.Since(start)
			n := f.count.ok() - before
			perTTL := float64(n) / (float64(elapsed) / float64(accessTTL))
			calls := 0
			for _, ctx := range ctxs {
				calls += int(eval[float64](t, ctx, `T.calls`))
			}
			t.Logf("%d tabs, %s: %d calls, %d failed, %d refreshes (%.2f per TTL of %s), %d reused, refresh statuses %v",
				len(ctxs), elapsed.Round(time.Millisecond), calls, len(fails), n, perTTL, accessTTL, f.count.reused, f.count.refreshes)
			if len(fails) > 0 {
				t.Errorf("failed calls: %q", fails)
			}
			if f.count.reused != 0 {
				t.Errorf("%d refresh_token_reused", f.count.reused)
			}
			// 1 to 2 per TTL; a short run loses up to one to quantization.
			low, high := int(elapsed/accessTTL), 2*float64(elapsed)/float64(accessTTL)
			if elapsed < 30*time.Second {
				low--
			}
			if n < low || float64(n) > high {
				t.Errorf("%d refreshes in %s (%.2f per TTL) for the whole browser, want %d to %.0f (1 to 2 per TTL)", n, elapsed, perTTL, low, high)
			}
			if len(f.count.leaked) > 0 {
				t.Errorf("cookie mode: JSON answers carried a refresh token: %q", f.count.leaked)
			}
			if c := eval[string](t, ctxs[0], `document.cookie`); strings.Contains(c, "refresh_token") {
				t.Errorf("document.cookie reads the refresh token: %q", c)
			}

			// Reload restores through the cookie.
			load(t, ctxs[1], fmt.Sprintf("%s/app?lock=%d", f.url, lockTimeout.Milliseconds()))
			if s := eval[string](t, ctxs[1], `T.initial`); s != "signed_in" {
				t.Errorf("after a reload: %q, want signed_in", s)
			}

			// Sign-out in one tab reaches all six within 1s.
			t0 := eval[float64](t, ctxs[2], `(async () => { const t0 = T.wall(); await T.c.signOut({scope: "this"}); return t0; })()`)
			time.Sleep(1200 * time.Millisecond)
			var slowest float64
			for i, ctx := range ctxs {
				st := eval[string](t, ctx, `T.c.state()`)
				at := eval[float64](t, ctx, `T.signedOutAt`)
				if st != "signed_out" || at == 0 {
					t.Errorf("tab %d: %s (signed out at %v) after a sign-out in tab 2", i, st, at)
				}
				slowest = max(slowest, at-t0)
			}
			t.Logf("sign-out reached every tab in %.0f ms", slowest)
			if slowest > 1000 {
				t.Errorf("sign-out took %.0f ms to reach every tab, want within 1s", slowest)
			}
			load(t, ctxs[3], fmt.Sprintf("%s/app", f.url))
			if s := eval[string](t, ctxs[3], `T.initial`); s != "signed_out" {
				t.Errorf("a reload after the sign-out: %q, want signed_out", s)
			}
		})
	}
}

// TestBrowserRevocation: an admin's sessions revoke, and a password change
// on another device, are seen by every tab within one call; no tab goes
// on calling with the dead token.
func TestBrowserRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	for _, driver := range dbtest.Drivers() {
		for _, how := range []string{"admin sessions revoke", "password change on another device"} {
			t.Run(driver+"/"+how, func(t *testing.T) {
				f := startServer(t, driver)
				b := browser(t, false)
				ctxs := signedInTabs(t, b, f, []int{0, 0, 0, 0, 0, 0})
				var other context.Context
				if how != "admin sessions revoke" {
					other = openTab(t, b, f.url+"/app", true) // a second device: its own browser context
					eval[map[string]any](t, other, fmt.Sprintf(`T.c.signIn({email: %q, password: %q, deviceName: "other"})`, f.email, password))
				}
				done := make(chan []string, 1)
				go func() { done <- loopAll(t, ctxs, 20*time.Second, true) }()
				time.Sleep(time.Second)
				f.count.refused.Store(0) // dead-token calls from here on
				if other == nil {
					if _, err := f.srv.RevokeSessions(context.Background(), f.email, "", true); err != nil {
						t.Fatal(err)
					}
				} else if !eval[bool](t, other, fmt.Sprintf(`(async () => (await T.c.fetch("/api/v1/me/password", {method: "PUT", headers: {"Content-Type": "application/json"}, body: JSON.stringify({current_password: %q, new_password: "a brand new passphrase"})})).ok)()`, password)) {
					t.Fatal("the password change failed")
				}
				revokedAt := time.Now()
				<-done
				if took := time.Since(revokedAt); took > 5*time.Second {
					t.Errorf("the tabs went on calling for %s after %s", took, how)
				}
				for i, ctx := range ctxs {
					if s := eval[string](t, ctx, `T.c.state()`); s != "signed_out" {
						t.Errorf("tab %d: %s after %s", i, s, how)
					}
					ev := eval[[]string](t, ctx, `T.events`)
					t.Logf("tab %d: 401s %v, events %v", i, eval[[]string](t, ctx, `T.dead`), ev)
					if !strings.HasPrefix(ev[len(ev)-1], "SIGNED_OUT:") {
						t.Errorf("tab %d: events %v, want SIGNED_OUT last", i, ev)
					}
				}
				refused := f.count.refused.Load()
				f.count.mu.Lock()
				statuses := fmt.Sprint(f.count.refreshes)
				f.count.mu.Unlock()
				t.Logf("%s: %d calls with a dead token (loops ended %s after it); refresh statuses %s", how, refused, time.Since(revokedAt).Round(time.Millisecond), statuses)
				if refused > int64(len(ctxs)) {
					t.Errorf("%d calls carried the dead token; want at most one per tab", refused)
				}
			})
		}
	}
}

// TestBrowserStuckTab: a frozen tab holding the refresh lock, and a
// closed one, block nobody for longer than the lock timeout.
func TestBrowserStuckTab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	f := startServer(t, "sqlite")
	b := browser(t, false)
	ctxs := signedInTabs(t, b, f, []int{0, 0, 0})
	stuck := ctxs[2]
	eval[bool](t, stuck, `(async () => { let got; const p = new Promise((r) => got = r); navigator.locks.request(T.lockName, () => { got(); return new Promise(() => {}); }); await p; return true; })()`)
	if _, err := chromedp.Call(stuck, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateFrozen}); err != nil {
		t.Fatalf("freeze the tab: %v", err)
	}
	before := f.count.ok()
	fails := loopAll(t, ctxs[:2], 3*accessTTL, false)
	n := f.count.ok() - before
	t.Logf("with a frozen tab holding the lock: %d refreshes in %s, failed calls %q", n, 3*accessTTL, fails)
	if len(fails) > 0 {
		t.Errorf("failed calls while a frozen tab held the lock: %q", fails)
	}
	if n < 2 {
		t.Errorf("%d refreshes in 3 TTLs: the frozen tab blocked the others", n)
	}
}

// TestBrowserOffline: a device offline past expiry is stale, not signed
// out; back online, it refreshes and is signed in.
func TestBrowserOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	f := startServer(t, "sqlite")
	b := browser(t, false)
	ctxs := signedInTabs(t, b, f, []int{0})
	tab := ctxs[0]
	// Offline: the server's connections are cut, as a lost network
	// does to the browser (fetch rejects with a network error).
	f.offline.Store(true)
	time.Sleep(accessTTL + time.Second)
	if s := eval[string](t, tab, `T.c.state()`); s != "stale" {
		t.Errorf("offline past expiry: %q, want stale", s)
	}
	f.offline.Store(false)
	if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`dispatchEvent(new Event("online"))`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`T.c.state() === "signed_in"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("back online: %s, want signed_in", eval[string](t, tab, `T.c.state()`))
	}
	if ev := eval[[]string](t, tab, `T.events`); strings.Contains(strings.Join(ev, ","), "SIGNED_OUT") {
		t.Errorf("going offline signed out: %v", ev)
	}
}

// TestBrowserBodyModeCrossSite: an app on another site (localhost, the API
// on 127.0.0.1) keeps working in body mode through CORS: sign-in, a
// refresh past the access TTL, no failed call.
func TestBrowserBodyModeCrossSite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	app := httptest.NewUnstartedServer(http.HandlerFunc(servePage))
	app.Start()
	t.Cleanup(app.Close)
	appOrigin := strings.Replace(app.URL, "127.0.0.1", "localhost", 1)
	f := startServer(t, "sqlite", func(c *config.Config) { c.CORS.AllowedOrigins = []string{appOrigin} })
	b := browser(t, false)
	load(t, b, fmt.Sprintf("%s/app?mode=body&base=%s/api/v1", appOrigin, f.url))
	out := eval[map[string]any](t, b, fmt.Sprintf(`T.c.signIn({email: %q, password: %q, deviceName: "cross-site"})`, f.email, password))
	if u, _ := out["user"].(map[string]any); u == nil {
		t.Fatalf("body-mode signIn from %s answered %v", appOrigin, out)
	}
	before := f.count.ok()
	fails := loopAll(t, []context.Context{b}, accessTTL+3*time.Second, false)
	if len(fails) > 0 {
		t.Errorf("failed calls in body mode: %q", fails)
	}
	if n := f.count.ok() - before; n < 1 {
		t.Errorf("%d refreshes past the access TTL in body mode, want at least 1", n)
	}
	if s := eval[string](t, b, `T.c.state()`); s != "signed_in" {
		t.Errorf("body mode after a refresh: %q", s)
	}
}
