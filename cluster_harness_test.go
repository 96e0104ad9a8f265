package authserver_test

// The fixture of the multi-instance tests: several assembled servers on
// one database, each with its own connection pool and its own background
// work (like several serve processes), and optionally one private Redis;
// driven through their real HTTP handlers. Nothing here sleeps to let
// things happen: every wait polls for a condition under a deadline.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/cache"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// clusterSecret is the server secret every instance shares, as the
// instances of one deployment do.
var clusterSecret = []byte("cluster-test-secret-cluster-test-secret-0123")

const (
	password    = "correct horse battery"
	newPassword = "another horse battery"
	// slack is what the bounds allow on top of max_staleness for a
	// request and a read under the race detector on a shared machine.
	slack = 500 * time.Millisecond
	// hangLimit is how long a revoking request may take while Redis is
	// down or hung.
	hangLimit = 2 * time.Second
)

// onDrivers runs fn on every test database (SQLite, MySQL when
// AUTH_TEST_MYSQL_DSN is set, PostgreSQL when AUTH_TEST_POSTGRES_DSN is
// set), the databases in parallel: the tests
// mostly wait for time to pass, each database's instances on their own.
func onDrivers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			fn(t, driver)
		})
	}
}

// database is one test database that several instances open, each with
// its own pool.
type database struct{ driver, dsn string }

func newDatabase(t testing.TB, driver string) database {
	t.Helper()
	driver, dsn := dbtest.DSN(t, driver)
	return database{driver: driver, dsn: dsn}
}

// clusterConfig is the configuration of the instances of one test: the
// named strategy, a cache bounded by maxStaleness, Redis at redisURL ("":
// none), on a channel of the test's own.
func clusterConfig(t testing.TB, name string, maxStaleness time.Duration, redisURL string) *config.Config {
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.Cookies.Secure = false
	cfg.Cache.MaxStaleness = maxStaleness
	cfg.Redis.URL = redisURL
	cfg.NoLimits()
	cfg.Redis.Prefix = strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":"
	return cfg
}

// withRedis is cfg with another redis.url (an instance behind a proxy).
func withRedis(cfg *config.Config, url string) *config.Config {
	c := *cfg
	c.Redis.URL = url
	return &c
}

// node is one instance.
type node struct {
	t    testing.TB
	name string
	cfg  *config.Config
	srv  *authserver.Server
	// pool is the instance's own connection pool: closing it cuts this
	// instance, and only it, off the database.
	pool    *gorm.DB
	handler http.Handler
	watch   *watch
	mail    *mailbox.Mailbox
	// slowest is the longest any API request took (ns), since
	// resetSlowest.
	slowest atomic.Int64
	// stop cancels the instance's background work (without waiting).
	stop context.CancelFunc
}

// buildNode assembles an instance on its own pool of db, without running
// it: an admin process that changes users and serves nothing.
func buildNode(t testing.TB, name string, db database, cfg *config.Config) *node {
	t.Helper()
	pool, err := models.Open(db.driver, db.dsn, models.Options{})
	if err != nil {
		t.Fatalf("%s: open %s: %v", name, db.driver, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := pool.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	n := &node{t: t, name: name, cfg: cfg, pool: pool, watch: &watch{}, mail: &mailbox.Mailbox{}}
	n.srv, err = authserver.New(context.Background(), authserver.Options{
		Config: cfg, DB: pool, Secret: clusterSecret, Mailer: n.mail,
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("%s: authserver.New: %v", name, err)
	}
	t.Cleanup(func() { _ = n.srv.Close() })
	// GORM's callbacks may not change while statements run: install the
	// watch before anything runs.
	n.watch.install(t, n.srv.DB())
	n.handler = n.srv.Handler()
	return n
}

// startNode assembles an instance and runs it as serve does: one outbox
// read, then the background work until the test ends. With Redis it
// returns once the instance is subscribed.
func startNode(t testing.TB, name string, db database, cfg *config.Config) *node {
	t.Helper()
	n := buildNode(t, name, db, cfg)
	n.stop = func() { _ = n.srv.Stop() }
	t.Cleanup(n.stop)
	if err := n.srv.Start(context.Background()); err != nil {
		t.Fatalf("%s: first outbox read: %v", name, err)
	}
	if cfg.Redis.Enabled() {
		n.awaitSubscribed(0)
	}
	return n
}

// pair is two instances of one strategy on one database: a revokes, b
// must learn it.
type pair struct {
	name string
	a, b *node
}

// startPair starts a and b on a fresh database of the driver; b uses
// cfg, a uses cfg with redis.url aURL when it is not "" (a proxy).
func startPair(t testing.TB, driver string, cfg *config.Config, aURL string) *pair {
	t.Helper()
	db := newDatabase(t, driver)
	acfg := cfg
	if aURL != "" {
		acfg = withRedis(cfg, aURL)
	}
	p := &pair{name: cfg.Strategy, a: startNode(t, "A", db, acfg), b: startNode(t, "B", db, cfg)}
	// Stop both at once: each may take up to a Redis ping interval.
	t.Cleanup(func() {
		p.a.stop()
		p.b.stop()
	})
	return p
}

func (n *node) maxStaleness() time.Duration { return n.cfg.Cache.MaxStaleness }

// pollEvery is how often the instance reads the outbox (cache.Feed).
func (n *node) pollEvery() time.Duration { return max(n.cfg.Cache.MaxStaleness/4, time.Millisecond) }

// bound is how long after a revocation answered another instance may
// still accept the token: max_staleness, and the slack of a test.
func (n *node) bound() time.Duration { return n.maxStaleness() + slack }

func (n *node) redisHealth() cache.RedisHealth {
	n.t.Helper()
	h := n.srv.FeedHealth()
	if h.Redis == nil {
		n.t.Fatalf("%s has no Redis link", n.name)
	}
	return *h.Redis
}

// awaitSubscribed waits until the instance's Redis subscription is up
// and was (re)made more than after times.
func (n *node) awaitSubscribed(after uint64) {
	n.t.Helper()
	eventually(n.t, 15*time.Second, n.name+" subscribed to Redis", func() bool {
		h := n.redisHealth()
		return h.Up && h.Resubscribes > after
	})
}

// answer is an HTTP answer.
type answer struct {
	code int
	raw  []byte
	body map[string]any
}

func (a answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

// sendCtx sends one request with ctx as its context.
func (n *node) sendCtx(ctx context.Context, method, path, token string, body any) answer {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, path, rd).WithContext(ctx)
	r.RemoteAddr = "192.0.2.10:1234"
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	n.handler.ServeHTTP(w, r)
	took := int64(time.Since(start))
	for strings.HasPrefix(path, "/api/") {
		old := n.slowest.Load()
		if took <= old || n.slowest.CompareAndSwap(old, took) {
			break
		}
	}
	out := answer{code: w.Code, raw: w.Body.Bytes()}
	if len(out.raw) > 0 {
		_ = json.Unmarshal(out.raw, &out.body)
	}
	return out
}

// resetSlowest starts measuring the slowest request anew.
func (n *node) resetSlowest() { n.slowest.Store(0) }

// checkSlowest fails the test if a request since resetSlowest took longer
// than limit.
func (n *node) checkSlowest(limit time.Duration) {
	n.t.Helper()
	if d := time.Duration(n.slowest.Load()); d > limit {
		n.t.Fatalf("%s: a request took %v (limit %v)", n.name, d, limit)
	}
}

func (n *node) send(method, path, token string, body any) answer {
	return n.sendCtx(context.Background(), method, path, token, body)
}

// do sends a request and fails the test unless the status is want.
func (n *node) do(want int, method, path, token string, body any) answer {
	n.t.Helper()
	a := n.send(method, path, token, body)
	if a.code != want {
		n.t.Fatalf("%s: %s %s: status %d, want %d; body %s", n.name, method, path, a.code, want, a.raw)
	}
	return a
}

// verify is the status GET /api/v1/auth/verify gives the token.
func (n *node) verify(token string) int {
	return n.send("GET", "/api/v1/auth/verify", token, nil).code
}

// register creates an account and returns its id.
func (n *node) register(email string) uint64 {
	n.t.Helper()
	a := n.do(http.StatusCreated, "POST", "/api/v1/auth/register", "", map[string]string{"email": email, "password": password})
	u, _ := a.body["user"].(map[string]any)
	s, _ := u["id"].(string)
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		n.t.Fatalf("register: no user id in %s", a.raw)
	}
	return id
}

// login is one device's login.
type login struct{ token, sid string }

func (n *node) login(email, device string) login {
	n.t.Helper()
	a := n.do(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password, "device_name": device})
	l := login{token: a.str("access_token")}
	if l.token == "" {
		n.t.Fatalf("login: no token in %s", a.raw)
	}
	l.sid = n.do(http.StatusOK, "GET", "/api/v1/auth/verify", l.token, nil).str("sid")
	return l
}

// user registers an account, logs it in once and returns its token.
func (n *node) user(email string) string {
	n.t.Helper()
	n.register(email)
	return n.login(email, "bystander").token
}

// warm verifies token until the instance answers it from its cache, so
// that only an invalidation can make it forget the token's state.
func (n *node) warm(token string) {
	n.t.Helper()
	eventually(n.t, 5*time.Second, n.name+" answers the token from its cache", func() bool {
		hits := n.srv.CacheStats().Hits
		if c := n.verify(token); c != http.StatusOK {
			n.t.Fatalf("%s: warming a valid token: verify answered %d", n.name, c)
		}
		return n.srv.CacheStats().Hits > hits
	})
}

// awaitRejected verifies token on n as fast as it can until n answers 401
// and returns how long after since that was. Every answer before must be
// 200; each token of alive must keep getting 200 meanwhile. It fails the
// test after within.
func (n *node) awaitRejected(token string, since time.Time, within time.Duration, alive ...string) time.Duration {
	n.t.Helper()
	for {
		switch c := n.verify(token); c {
		case http.StatusUnauthorized:
			return time.Since(since)
		case http.StatusOK:
		default:
			n.t.Fatalf("%s: verify answered %d while the revocation propagates; want 200 or 401", n.name, c)
		}
		for _, tok := range alive {
			if c := n.verify(tok); c != http.StatusOK {
				n.t.Fatalf("%s: a valid token got %d; want 200", n.name, c)
			}
		}
		if waited := time.Since(since); waited > within {
			n.t.Fatalf("%s still accepts a revoked token %v after the revocation answered (bound %v)", n.name, waited, within)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// stayRejected checks that the tokens stay rejected on n until n has
// completed an outbox read that began after now: neither a refill from
// the database nor the outbox brings them back.
func (n *node) stayRejected(tokens ...string) {
	n.t.Helper()
	now := time.Now()
	eventually(n.t, 2*n.maxStaleness()+5*time.Second, n.name+" reads the outbox again", func() bool {
		for _, tok := range tokens {
			if c := n.verify(tok); c != http.StatusUnauthorized {
				n.t.Fatalf("%s: a revoked token got %d after it had been rejected", n.name, c)
			}
		}
		return n.srv.FeedHealth().LastRead.After(now)
	})
}

// clearOfReads returns when n's next outbox read is at least 400ms (or
// three quarters of a poll interval) away, so that what n learns in the
// next moments it cannot have learnt from the outbox.
func (n *node) clearOfReads() {
	n.t.Helper()
	h := n.srv.FeedHealth()
	headroom := min(400*time.Millisecond, n.pollEvery()*3/4)
	if time.Since(h.LastRead) <= n.pollEvery()-headroom {
		return
	}
	eventually(n.t, 2*n.pollEvery()+5*time.Second, n.name+"'s next outbox read", func() bool {
		return n.srv.FeedHealth().Reads > h.Reads
	})
}

// eventually polls cond until it holds, failing the test after within,
// and returns how long it took.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// revocable lists the strategies that can revoke a token before it
// expires.
func revocable() []string {
	var out []string
	for _, name := range strategy.Names() {
		if c := caps(name); c.LogoutAllDevices || c.LogoutThisDevice {
			out = append(out, name)
		}
	}
	return out
}

func caps(name string) strategy.Capabilities {
	s, err := strategy.Build(name, strategy.Options{})
	if err != nil {
		panic(err)
	}
	return strategy.CapabilitiesOf(s)
}

// Revocations over HTTP, and which strategies offer them.
var revocations = []struct {
	name string
	can  func(strategy.Capabilities) bool
}{
	{"logout", func(c strategy.Capabilities) bool { return c.LogoutThisDevice }},
	{"logout-all", func(c strategy.Capabilities) bool { return c.LogoutAllDevices }},
	{"password-change", func(c strategy.Capabilities) bool { return c.RevokeOnPasswordChange }},
	{"revoke-device", func(c strategy.Capabilities) bool { return c.RevokeDevice }},
}

// primary is the revocation the outage tests use: a key change under
// password_key, one device's logout where there are devices.
func primary(name string) string {
	if caps(name).LogoutThisDevice {
		return "logout"
	}
	return "logout-all"
}

// mark is a user set up for one revocation: the tokens it must end, the
// tokens it must spare, and the revoking request.
type mark struct {
	uid                uint64
	victims, survivors []string
	// revoke sends the revoking request to the instance the user was set
	// up on; it fails the test unless the request succeeded.
	revoke func()
}

// prepare registers a user on n, logs it in on two devices (one where a
// second login would end the first) and readies the revocation.
func (n *node) prepare(revocation, email string) mark {
	n.t.Helper()
	uid := n.register(email)
	devices := 2
	if n.cfg.Strategy == "single_device" {
		devices = 1
	}
	var ls []login
	for i := range devices {
		ls = append(ls, n.login(email, fmt.Sprintf("device %d", i)))
	}
	all := make([]string, len(ls))
	for i, l := range ls {
		all[i] = l.token
	}
	caller, others := ls[len(ls)-1], all[:len(all)-1]
	m := mark{uid: uid}
	switch revocation {
	case "logout": // the caller ends its own login
		m.victims, m.survivors = []string{caller.token}, others
		m.revoke = func() { n.do(http.StatusNoContent, "POST", "/api/v1/auth/logout", caller.token, nil) }
	case "logout-all":
		m.victims = all
		m.revoke = func() { n.do(http.StatusNoContent, "POST", "/api/v1/auth/logout-all", caller.token, nil) }
	case "password-change":
		m.victims = all
		m.revoke = func() {
			n.do(http.StatusOK, "PUT", "/api/v1/me/password", caller.token, map[string]string{"current_password": password, "new_password": newPassword})
		}
	case "revoke-device": // the caller ends the other device, or itself when alone
		victim := ls[0]
		m.victims = []string{victim.token}
		if len(ls) > 1 {
			m.survivors = []string{caller.token}
		}
		m.revoke = func() { n.do(http.StatusNoContent, "DELETE", "/api/v1/sessions/"+victim.sid, caller.token, nil) }
	default:
		n.t.Fatalf("unknown revocation %q", revocation)
	}
	return m
}

// viaRedis revokes m on a and proves that b learnt it through Redis: a
// rejects the victims by the time the revoking request has answered, and
// b, which held their state in its trusted cache, rejects them within
// 500ms while it completed no outbox read, flushed nothing and never
// stopped trusting its cache, and after it received a message. It
// returns how long b took.
func viaRedis(t testing.TB, a, b *node, m mark) time.Duration {
	t.Helper()
	for _, tok := range append(m.victims, m.survivors...) {
		a.warm(tok)
		b.warm(tok)
	}
	b.clearOfReads()
	for _, tok := range m.victims {
		b.warm(tok)
	}
	hb, cb := b.srv.FeedHealth(), b.srv.CacheStats()
	m.revoke()
	done := time.Now()
	for _, tok := range m.victims {
		if c := a.verify(tok); c != http.StatusUnauthorized {
			t.Fatalf("A, which revoked, answered %d once the revoking request had answered; want 401", c)
		}
	}
	for _, tok := range m.survivors {
		if c := a.verify(tok); c != http.StatusOK {
			t.Fatalf("A: a token the revocation spares got %d", c)
		}
	}
	took := b.awaitRejected(m.victims[0], done, 500*time.Millisecond)
	ha, ca := b.srv.FeedHealth(), b.srv.CacheStats()
	if ha.Reads != hb.Reads || ha.Applied != hb.Applied {
		t.Fatalf("B completed an outbox read before it rejected (reads %d→%d, rows %d→%d): propagation took %v, which Redis should have done first",
			hb.Reads, ha.Reads, hb.Applied, ha.Applied, took)
	}
	if ca.Flushes != cb.Flushes || ca.Bypasses != cb.Bypasses || ca.Evictions != cb.Evictions {
		t.Fatalf("B's cache was flushed, bypassed or evicted meanwhile (%+v → %+v): the rejection proves nothing of Redis", cb, ca)
	}
	if ha.Redis.Received <= hb.Redis.Received {
		t.Fatalf("B rejected without receiving a Redis message (received %d → %d)", hb.Redis.Received, ha.Redis.Received)
	}
	for _, tok := range m.victims {
		if c := b.verify(tok); c != http.StatusUnauthorized {
			t.Fatalf("B: a revoked token got %d", c)
		}
	}
	for _, tok := range m.survivors {
		if c := b.verify(tok); c != http.StatusOK {
			t.Fatalf("B: a token the revocation spares got %d", c)
		}
	}
	return took
}

// withinBound revokes m on a and checks the hard bound: a rejects the
// victims by the time the revoking request has answered (and that
// request took less than hangLimit), b, which held their state in its
// cache, rejects them within max_staleness, valid tokens (the survivors
// and alive) keep getting 200 meanwhile, and neither takes the victims
// back. It returns how long b took.
func withinBound(t testing.TB, a, b *node, m mark, alive ...string) time.Duration {
	t.Helper()
	valid := append(append([]string{}, m.survivors...), alive...)
	for _, tok := range append(append([]string{}, m.victims...), valid...) {
		a.warm(tok)
		b.warm(tok)
	}
	start := time.Now()
	m.revoke()
	done := time.Now()
	if d := done.Sub(start); d > hangLimit {
		t.Fatalf("the revoking request took %v (limit %v)", d, hangLimit)
	}
	for _, tok := range m.victims {
		if c := a.verify(tok); c != http.StatusUnauthorized {
			t.Fatalf("A, which revoked, answered %d once the revoking request had answered; want 401", c)
		}
	}
	took := b.awaitRejected(m.victims[0], done, b.bound(), valid...)
	for _, tok := range valid {
		if c := a.verify(tok); c != http.StatusOK {
			t.Fatalf("A: a valid token got %d", c)
		}
	}
	b.stayRejected(m.victims...)
	if c := a.verify(m.victims[0]); c != http.StatusUnauthorized {
		t.Fatalf("A took a revoked token back: %d", c)
	}
	return took
}

// watch counts the statements an instance runs for requests (not for its
// background work) and can hold a request's read: see hold.
type watch struct {
	// users counts SELECTs of the users table; all counts statements.
	users, all atomic.Int64
}

type holdKey struct{}

// hold stops a request's statement on table, after it ran and before
// its caller sees the result, until released.
type hold struct {
	table    string
	once     sync.Once
	reached  chan struct{}
	released chan struct{}
}

func newHold(table string) *hold {
	return &hold{table: table, reached: make(chan struct{}), released: make(chan struct{})}
}

// context marks ctx: its statements on h.table are held.
func (h *hold) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, holdKey{}, h)
}

func (h *hold) wait() {
	h.once.Do(func() {
		close(h.reached)
		<-h.released
	})
}

func (w *watch) install(t testing.TB, db *gorm.DB) {
	t.Helper()
	after := func(db *gorm.DB) {
		ctx := db.Statement.Context
		if ctx == nil || models.IsBackground(ctx) {
			return
		}
		w.all.Add(1)
	}
	cb := db.Callback()
	errs := []error{
		cb.Query().After("gorm:query").Register("test:watch_query", func(db *gorm.DB) {
			ctx := db.Statement.Context
			if ctx == nil || models.IsBackground(ctx) {
				return
			}
			w.all.Add(1)
			if db.Statement.Table == "users" {
				w.users.Add(1)
			}
			if h, ok := ctx.Value(holdKey{}).(*hold); ok && db.Statement.Table == h.table {
				h.wait()
			}
		}),
		cb.Row().After("gorm:row").Register("test:watch_row", after),
		cb.Raw().After("gorm:raw").Register("test:watch_raw", after),
		cb.Create().After("gorm:create").Register("test:watch_create", after),
		cb.Update().After("gorm:update").Register("test:watch_update", after),
		cb.Delete().After("gorm:delete").Register("test:watch_delete", after),
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("register callback: %v", err)
		}
	}
}

// cutter is a TCP proxy to Redis that the test can cut: Cut closes its
// listener and every connection through it, as a network partition
// between one instance and Redis would, while the other instances still
// reach Redis directly.
type cutter struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startCutter(t testing.TB, target string) *cutter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutter{l: l, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(p.Cut)
	return p
}

// URL is the redis.url that reaches Redis through the proxy.
func (p *cutter) URL() string { return "redis://" + p.l.Addr().String() + "/0" }

func (p *cutter) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, d)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(d, c) })
		p.wg.Go(func() { pipe(c, d) })
	}
}

// Cut closes the proxy and every connection through it.
func (p *cutter) Cut() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// resetToken is the last reset token the instance mailed to email, once
// its reset queue is empty (tokens are made off the request path).
func (n *node) resetToken(email string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.WaitResets(ctx); err != nil {
		n.t.Fatalf("%s: waiting for the reset queue: %v", n.name, err)
	}
	return n.mail.Last(email)
}
