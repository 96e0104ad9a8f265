package compare

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// databases hands out a fresh, migrated database per strategy and removes
// it again.
type databases struct {
	driver, dsn string
	// tmpDir holds the SQLite files when no DSN was given.
	tmpDir string
	// admin is the connection to the MySQL server that creates and drops
	// the per-strategy databases; mc is the DSN they are derived from.
	admin *gorm.DB
	mc    *mysqldriver.Config
}

func newDatabases(ctx context.Context, driver, dsn string) (*databases, error) {
	d := &databases{driver: driver, dsn: dsn}
	switch driver {
	case "sqlite":
		if dsn == "" {
			dir, err := os.MkdirTemp("", "authserver-compare-")
			if err != nil {
				return nil, fmt.Errorf("create temporary directory: %w", err)
			}
			d.tmpDir = dir
		}
	case "mysql":
		mc, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse --dsn: %w", err)
		}
		if mc.DBName == "" {
			return nil, errors.New("--dsn must name a database, e.g. 'root@tcp(127.0.0.1:3306)/test': its name prefixes the per-strategy databases")
		}
		admin, err := models.Open("mysql", dsn, models.Options{})
		if err != nil {
			return nil, err
		}
		if err := models.Ping(ctx, admin); err != nil {
			closeDB(admin)
			return nil, fmt.Errorf("connect to MySQL: %w", err)
		}
		d.admin, d.mc = admin, mc
	}
	return d, nil
}

// open returns a fresh migrated database for the strategy and the function
// that closes and removes it.
func (d *databases) open(ctx context.Context, name string) (*gorm.DB, func(), error) {
	dsn, remove, err := d.create(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	db, err := models.Open(d.driver, dsn, models.Options{})
	if err != nil {
		remove()
		return nil, nil, err
	}
	cleanup := func() {
		closeDB(db)
		remove()
	}
	if err := models.Migrate(ctx, db); err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, cleanup, nil
}

// create makes the empty database: a new SQLite file or a new MySQL
// database. A leftover of an interrupted run under the same name is
// removed first: the _cmp_ names belong to compare.
func (d *databases) create(ctx context.Context, name string) (string, func(), error) {
	switch d.driver {
	case "sqlite":
		var dsn, path string
		switch {
		case d.tmpDir != "":
			path = filepath.Join(d.tmpDir, name+".db")
			dsn = path
		case strings.Contains(d.dsn, ":memory:") || strings.Contains(d.dsn, "mode=memory"):
			// Each Open of a private in-memory database starts empty.
			return d.dsn, func() {}, nil
		default:
			dsn, path = sqliteFile(d.dsn, name)
		}
		removeSQLite(path)
		return dsn, func() { removeSQLite(path) }, nil
	default:
		db := d.mc.DBName + "_cmp_" + name
		if len(db) > 64 {
			return "", nil, fmt.Errorf("database name %s is longer than MySQL's 64 characters: use a shorter database name in --dsn", db)
		}
		ident := "`" + strings.ReplaceAll(db, "`", "``") + "`"
		if err := d.admin.WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + ident).Error; err != nil {
			return "", nil, fmt.Errorf("drop leftover database %s: %w", db, err)
		}
		if err := d.admin.WithContext(ctx).Exec("CREATE DATABASE " + ident + " CHARACTER SET utf8mb4").Error; err != nil {
			return "", nil, fmt.Errorf("create database %s: %w", db, err)
		}
		mc := d.mc.Clone()
		mc.DBName = db
		drop := func() { _ = d.admin.Exec("DROP DATABASE IF EXISTS " + ident).Error }
		return mc.FormatDSN(), drop, nil
	}
}

func (d *databases) close() {
	if d.tmpDir != "" {
		_ = os.RemoveAll(d.tmpDir)
	}
	if d.admin != nil {
		closeDB(d.admin)
	}
}

// sqliteFile derives the strategy's file from the --dsn path: foo.db gives
// foo_cmp_<name>.db, keeping a file: prefix and query parameters.
func sqliteFile(dsn, name string) (full, path string) {
	base, query, hasQuery := strings.Cut(dsn, "?")
	prefix := ""
	if rest, ok := strings.CutPrefix(base, "file:"); ok {
		prefix, base = "file:", rest
	}
	ext := filepath.Ext(base)
	path = strings.TrimSuffix(base, ext) + "_cmp_" + name + ext
	full = prefix + path
	if hasQuery {
		full += "?" + query
	}
	return full, path
}

// removeSQLite removes a database file with its WAL files.
func removeSQLite(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// clock is the servers' clock: the real time plus an offset that the
// refresh-reuse scenario moves forward instead of sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one strategy under test: its database with the statement counter,
// the server with the default configuration (main), and a second server on
// the same database with devices.max = 2 (limited).
type env struct {
	name    string
	db      *gorm.DB
	count   *counter
	clock   *clock
	grace   time.Duration
	main    *client
	limited *client
	users   atomic.Int64
	// claims are the strategy's reported capabilities plus the design
	// properties the capabilities do not express.
	claims map[string]bool
}

// startEnv builds the strategy's servers on db. stop shuts them down.
func startEnv(ctx context.Context, db *gorm.DB, name string) (e *env, stop func(), err error) {
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.Reset.ExposeToken = true
	// compare measures the strategies: from one client IP, with the abuse
	// controls off.
	cfg.RateLimit = config.RateLimit{LoginPerIP: "0", RegisterPerIP: "0", ResetPerIP: "0", ResetPerAccount: "0", RefreshPerIP: "0", VerifyPerIP: "0"}
	cfg.BruteForce.MaxFailures = 0
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	limitedCfg := *cfg
	limitedCfg.Devices.Max = 2
	limitedCfg.Devices.OnLimit = "reject"

	e = &env{name: name, db: db, count: &counter{}, clock: &clock{}, grace: cfg.JWT.RefreshReuseGrace}
	secret := []byte(strategy.NewSecret(32))
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	var servers []*httptest.Server
	for _, c := range []*config.Config{cfg, &limitedCfg} {
		srv, halt, err := startServer(ctx, db, c, secret, e.clock, e.count)
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, halt)
		servers = append(servers, srv)
	}
	e.main, e.limited = newClient(servers[0]), newClient(servers[1])
	if e.claims, err = e.main.claims(ctx, name); err != nil {
		stop()
		return nil, nil, err
	}
	return e, stop, nil
}

// startServer assembles a server on db (its own handle on db's pool, whose
// statements count counts) and serves it on loopback; halt stops it.
func startServer(ctx context.Context, db *gorm.DB, cfg *config.Config, secret []byte, clk *clock, count *counter) (*httptest.Server, func(), error) {
	srv, err := authserver.New(ctx, authserver.Options{
		Config: cfg, DB: db, Secret: secret, Now: clk.Now, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := count.register(srv.DB()); err != nil {
		return nil, nil, err
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Stop()
		return nil, nil, err
	}
	hs := httptest.NewServer(srv.Handler())
	return hs, func() {
		hs.Close()
		_ = srv.Stop()
	}, nil
}

// singleLogin is the one design property that GET /api/v1/strategy does not
// report: the strategy keeps a single login per user, so a new login ends
// the previous one.
var singleLogin = map[string]bool{"single_device": true}

// userAgent is a typical browser's, so that stored device descriptions
// have a realistic size.
const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// client talks to one server over loopback HTTP.
type client struct {
	base string
	hc   *http.Client
}

func newClient(srv *httptest.Server) *client {
	hc := srv.Client()
	hc.Timeout = 30 * time.Second
	return &client{base: srv.URL, hc: hc}
}

// call is one request: a JSON body (nil for none), a bearer token, headers.
type call struct {
	method, path string
	token        string
	body         any
	header       map[string]string
}

// answer is a response with its JSON body decoded.
type answer struct {
	status int
	body   map[string]any
	raw    []byte
}

func (a *answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

// code is the error code of an error answer.
func (a *answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a *answer) String() string {
	if c := a.code(); c != "" {
		return fmt.Sprintf("%d %s", a.status, c)
	}
	return fmt.Sprint(a.status)
}

// do sends the request. A server error (5xx other than 501 not_supported)
// or an answer that is not JSON is an error: no scenario expects one.
func (c *client) do(ctx context.Context, r call) (*answer, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	a := &answer{status: resp.StatusCode, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			return nil, fmt.Errorf("%s %s: answer %d is not a JSON object: %.200q", r.method, r.path, a.status, raw)
		}
	}
	if a.status >= 500 && a.status != http.StatusNotImplemented {
		return nil, fmt.Errorf("%s %s: server error %d: %.200s", r.method, r.path, a.status, raw)
	}
	return a, nil
}

// claims reads GET /api/v1/strategy and adds the design properties.
func (c *client) claims(ctx context.Context, name string) (map[string]bool, error) {
	a, err := c.do(ctx, call{method: "GET", path: "/api/v1/strategy"})
	if err != nil {
		return nil, err
	}
	var info struct {
		Name         string          `json:"name"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	if err := json.Unmarshal(a.raw, &info); err != nil || a.status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/strategy: %d %.200s", a.status, a.raw)
	}
	if info.Name != name {
		return nil, fmt.Errorf("GET /api/v1/strategy names %q, want %q", info.Name, name)
	}
	claims := info.Capabilities
	if claims == nil {
		claims = map[string]bool{}
	}
	claims["single_login"] = singleLogin[name]
	claims["multiple_logins"] = !singleLogin[name]
	return claims, nil
}

// sidOf reads the sid claim of an access token. The client may read its
// own token's payload; it is signed, not encrypted.
func sidOf(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("decode access token: %w", err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.SID == "" {
		return "", errors.New("the access token carries no sid")
	}
	return c.SID, nil
}
