// Package authserver assembles the auth server: the database and its
// migrations, the verification cache and what keeps it exact (the outbox
// feed and, when configured, Redis), the token service of the configured
// strategy, and the HTTP API. It is the one place where a server is put
// together: the serve, compare and demo commands, the tests and
// applications that embed the server all build it through New.
//
// An application that embeds the server passes its own *gorm.DB (or
// *sql.DB); the server opens its own GORM handle on that connection pool,
// with database.table_prefix in front of its table names, so the
// application's tables and GORM settings are left alone, and it never
// closes the pool.
//
//	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, DB: appDB})
//	go srv.Run(ctx)
//	srv.Mount(router.Group("/api/v1"))              // register, login, verify, ...
//	router.GET("/orders", srv.Middleware(), orders) // authserver.UserID(c) inside
package authserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/revocable/authserver/bruteforce"
	"github.com/revocable/authserver/cache"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/metrics"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/ratelimit"
	"github.com/revocable/authserver/routes"
	"github.com/revocable/authserver/strategy"
)

// Options are what a server is built from. Only Config is required.
type Options struct {
	Config *config.Config
	// DB is an application's database to share. When nil (and SQLDB too),
	// the server opens database.driver / database.dsn itself.
	DB *gorm.DB
	// SQLDB is an application's connection pool to share, of the driver
	// database.driver names.
	SQLDB *sql.DB
	// Secret and PreviousSecrets override the configured server secrets
	// (tests, the demo).
	Secret          []byte
	PreviousSecrets [][]byte
	// Log receives the server's logs; nil builds one from log.format and
	// log.level on standard error.
	Log *slog.Logger
	// Mailer delivers password-reset tokens; nil logs them (development).
	Mailer routes.Mailer
	// Now is the clock of tokens and sessions; nil means time.Now.
	Now func() time.Time
}

// newRedis is the client of the configured Redis: one server (redis.url)
// or a replicated one under Sentinel (redis.sentinel.*), whose client asks
// the sentinels for the master and follows a failover. Either way a dead
// Redis must cost a request milliseconds (the limiter falls back to
// memory, the feed to the outbox), not go-redis's default seconds of
// dialing and retrying; and without ContextTimeoutEnabled go-redis ignores
// context deadlines on the socket, so a hung Redis (CLIENT PAUSE) would
// hold each publish for its ReadTimeout instead of the feed's short
// deadline.
func newRedis(rc config.Redis) (*redis.Client, error) {
	const timeout = 250 * time.Millisecond
	if sc := rc.Sentinel; sc.Master != "" {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: sc.Master, SentinelAddrs: sc.Addrs, SentinelPassword: sc.SentinelPassword,
			Username: sc.Username, Password: sc.Password, DB: sc.DB,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
			MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
		}), nil
	}
	ro, err := redis.ParseURL(rc.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = timeout, timeout, timeout
	ro.MaxRetries, ro.DialerRetries = -1, 1
	ro.ContextTimeoutEnabled = true
	return redis.NewClient(ro), nil
}

// Server is one assembled server. Run its background work with Run.
type Server struct {
	cfg     *config.Config
	db      *gorm.DB
	ownsDB  bool
	log     *slog.Logger
	tokens  *strategy.Service
	cache   *cache.Cache[*strategy.State]
	feed    *cache.Feed
	redis   *redis.Client
	api     *routes.API
	handler http.Handler
	// throttles is the brute-force throttle's store, pruned with the rest.
	throttles *bruteforce.DBStore
	throttle  *bruteforce.Throttle
	limits    *ratelimit.Limiter
	hasher    *passhash.Hasher
	// metrics is nil unless metrics.addr is set; throttleStats counts
	// what the throttle's store does, for it.
	metrics       *metrics.Metrics
	throttleStats *bruteforce.CountingStore

	// stop ends the background work Start started.
	stop      func()
	closeOnce sync.Once
}

// New builds a server. The database is migrated; nothing runs in the
// background until Run.
func New(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	if cfg == nil {
		return nil, errors.New("authserver: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		var err error
		if log, err = NewLogger(cfg, nil); err != nil {
			return nil, err
		}
	}
	// Every line logged with a request's context names the request.
	log = slog.New(requestIDHandler{log.Handler()})
	s := &Server{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()
	if err := s.openDB(ctx, o); err != nil {
		return nil, err
	}
	secret, previous := o.Secret, o.PreviousSecrets
	if secret == nil {
		var err error
		if secret, previous, err = cfg.Secrets(log); err != nil {
			return nil, err
		}
	}
	if cfg.Redis.Enabled() {
		var err error
		if s.redis, err = newRedis(cfg.Redis); err != nil {
			return nil, err
		}
	}
	sc := cfg.ServiceConfig(secret, previous...)
	sc.Now, sc.Log = o.Now, log
	if cfg.Cache.Enabled {
		s.cache = cache.New[*strategy.State](cache.Options{MaxEntries: cfg.Cache.MaxEntries, MaxStaleness: cfg.Cache.MaxStaleness})
		s.feed = cache.NewFeed(s.db, s.cache, cache.FeedOptions{
			MaxStaleness: cfg.Cache.MaxStaleness, Redis: s.redis, Channel: cfg.Redis.Prefix + "invalidations", Log: log,
		})
		sc.Cache, sc.Announce = s.cache, s.feed.Publish
	} else if s.redis != nil {
		// No cache here, but other instances may have one.
		s.feed = cache.NewFeed(s.db, nopTarget{}, cache.FeedOptions{MaxStaleness: cfg.Cache.MaxStaleness, Redis: s.redis, Channel: cfg.Redis.Prefix + "invalidations", Log: log})
		sc.Announce = s.feed.Publish
	}
	var err error
	if s.tokens, err = strategy.New(s.db, cfg.Strategy, sc); err != nil {
		return nil, err
	}
	if cfg.Metrics.Addr != "" {
		s.metrics = metrics.New(metrics.Info{Strategy: cfg.Strategy, Driver: models.Driver(s.db)})
	}
	deps := routes.Deps{Config: cfg, Tokens: s.tokens, Log: log, Mailer: o.Mailer, Ready: s.Ready, Now: o.Now, Metrics: s.metrics}
	if err := s.abuseControls(&deps, secret, o.Now); err != nil {
		return nil, err
	}
	if s.api, err = routes.New(deps); err != nil {
		return nil, err
	}
	if err := s.watch(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// abuseControls builds the rate limiter (in Redis when configured, with
// memory as the fallback), the brute-force throttle (in the database, so
// that it adds no way to fail to logins, which need the database anyway)
// and the bounded password hasher. What they store is keyed with keys
// derived from the server secret: no IP or email in clear.
func (s *Server) abuseControls(d *routes.Deps, secret []byte, now func() time.Time) error {
	cfg := s.cfg
	rules, err := cfg.RateLimitRules()
	if err != nil {
		return err
	}
	rlKey, err := strategy.DeriveKey(secret, "ratelimit")
	if err != nil {
		return err
	}
	if d.Limits, err = ratelimit.New(rules, ratelimit.Options{
		Redis: s.redis, Log: s.log, Prefix: cfg.Redis.Prefix + "rl:", KeySecret: rlKey, Now: now,
	}); err != nil {
		return err
	}
	bfKey, err := strategy.DeriveKey(secret, "bruteforce")
	if err != nil {
		return err
	}
	s.throttles = bruteforce.NewDBStore(s.db)
	var store bruteforce.Store = s.throttles
	if s.metrics != nil {
		s.throttleStats = bruteforce.NewCountingStore(s.throttles, now)
		store = s.throttleStats
	}
	if d.Throttle, err = bruteforce.New(store, bruteforce.Options{Policy: cfg.BruteForcePolicy(), KeySecret: bfKey, Now: now}); err != nil {
		return err
	}
	s.throttle, s.limits = d.Throttle, d.Limits
	d.Hasher, err = passhash.New(passhash.Config{
		Cost: cfg.Password.BcryptCost, MaxConcurrent: cfg.Password.MaxConcurrentHashes, QueueTimeout: cfg.Password.HashQueueTimeout,
	})
	s.hasher = d.Hasher
	return err
}

// Throttle is the brute-force throttle (the admin CLI unlocks through it).
func (s *Server) Throttle() *bruteforce.Throttle { return s.throttle }

// WaitResets waits until queued password-reset mails are sent.
func (s *Server) WaitResets(ctx context.Context) error { return s.api.WaitResets(ctx) }

func (s *Server) openDB(ctx context.Context, o Options) error {
	mo := models.Options{TablePrefix: s.cfg.Database.TablePrefix}
	var err error
	switch {
	case o.DB != nil:
		sqlDB, derr := o.DB.DB()
		if derr != nil {
			return fmt.Errorf("the application's database: %w", derr)
		}
		s.db, err = models.OpenConn(models.Driver(o.DB), sqlDB, mo)
	case o.SQLDB != nil:
		s.db, err = models.OpenConn(s.cfg.Database.Driver, o.SQLDB, mo)
	default:
		s.db, err = models.Open(s.cfg.Database.Driver, s.cfg.Database.DSN, mo)
		s.ownsDB = err == nil
		if err != nil {
			// Name the settings, never the DSN itself: it may hold a password.
			return fmt.Errorf("database.dsn (database.driver %s): %w", s.cfg.Database.Driver, err)
		}
	}
	if err != nil {
		return err
	}
	rep, err := models.MigrateWithReport(ctx, s.db)
	if err != nil {
		return err
	}
	if rep.EmailsCanonicalized > 0 {
		s.log.Info("rewrote stored emails to their canonical form", "accounts", rep.EmailsCanonicalized)
	}
	if len(rep.EmailConflicts) > 0 || len(rep.EmailsInvalid) > 0 {
		// Ids only: an email is personal data and has no place in a log.
		s.log.Warn("accounts left with a non-canonical email: they cannot log in or reset by email until an operator resolves them (docs/security.md)",
			"conflicting_user_ids", rep.EmailConflicts, "invalid_user_ids", rep.EmailsInvalid)
	}
	return nil
}

// Handler is the standalone HTTP handler: the API under /api/v1 and the
// health checks.
func (s *Server) Handler() http.Handler {
	if s.handler == nil {
		h, err := s.api.Handler()
		if err != nil {
			// The trusted proxies were validated by New.
			panic(err)
		}
		s.handler = h
	}
	return s.handler
}

// Mount registers the API on an application's router or group; the paths
// are relative to it: r.Group("/api/v1") gives the standard ones.
func (s *Server) Mount(r gin.IRouter) { s.api.Mount(r) }

// CORS is the CORS middleware of cors.allowed_origins, for an application
// that mounts the API: use it on the engine (router.Use(srv.CORS())), so
// that it answers preflights to every path before routing. Handler applies
// it by itself; without allowed origins it does nothing.
func (s *Server) CORS() gin.HandlerFunc { return s.api.CORS() }

// Middleware protects an application's own routes: it verifies the
// Bearer token under the running strategy (through the cache, like the
// API) and makes the caller available to UserID, LoginID and Caller, or
// answers 401 (503 when the state cannot be read: it fails closed).
func (s *Server) Middleware() gin.HandlerFunc { return s.api.Authenticate() }

// UserID is the verified caller's user id, in a handler behind Middleware.
func UserID(c *gin.Context) (uint64, bool) {
	p, ok := routes.Caller(c)
	if !ok {
		return 0, false
	}
	return p.UserID, true
}

// LoginID is the verified caller's login (device, session) id.
func LoginID(c *gin.Context) (string, bool) {
	p, ok := routes.Caller(c)
	if !ok {
		return "", false
	}
	return p.LoginID, true
}

// Caller is the verified caller, from a request context that went through
// Middleware (for code that sees only the context).
func Caller(ctx context.Context) (*strategy.Principal, bool) { return routes.CallerFrom(ctx) }

// Tokens is the token service.
func (s *Server) Tokens() *strategy.Service { return s.tokens }

// DB is the server's own database handle.
func (s *Server) DB() *gorm.DB { return s.db }

// Config is the server's configuration.
func (s *Server) Config() *config.Config { return s.cfg }

// CacheStats are the verification cache's counters (zero without cache).
func (s *Server) CacheStats() cache.Stats {
	if s.cache == nil {
		return cache.Stats{}
	}
	return s.cache.Stats()
}

// FeedHealth is the state of the invalidation feed (zero without one).
func (s *Server) FeedHealth() cache.Health {
	if s.feed == nil {
		return cache.Health{}
	}
	return s.feed.Health()
}

// PollOutbox reads the invalidation outbox once, now (tests, and a server
// about to answer its first request).
func (s *Server) PollOutbox(ctx context.Context) error {
	if s.feed == nil {
		return nil
	}
	return s.feed.Poll(ctx)
}

// Start reads the invalidation outbox once (so that the cache is trusted
// from the first request; a failure is returned, and the server then
// verifies from the database until a read succeeds) and starts the
// background work (Run) until Stop.
func (s *Server) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.stop = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		s.Run(bg)
	}()
	return s.PollOutbox(ctx)
}

// Stop ends what Start started and closes the server (Close).
func (s *Server) Stop() error {
	if s.stop != nil {
		s.stop()
	}
	return s.Close()
}

// Run does the server's background work until ctx ends: the invalidation
// feed, the last-seen writer and the periodic prune.
func (s *Server) Run(ctx context.Context) {
	ctx = models.Background(ctx)
	var wg sync.WaitGroup
	if s.feed != nil {
		wg.Go(func() { s.feed.Run(ctx) })
	}
	wg.Go(func() { s.tokens.RunTouches(ctx) })
	wg.Go(func() { s.prune(ctx) })
	wg.Wait()
}

// prune deletes expired and revoked rows every database.prune_interval.
func (s *Server) prune(ctx context.Context) {
	t := time.NewTicker(s.cfg.Database.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Prune(ctx)
			if err != nil {
				s.log.Warn("prune failed", "err", err)
				continue
			}
			if n > 0 {
				s.log.Info("pruned expired and revoked rows", "rows", n)
			}
		}
	}
}

// Prune deletes, once, what can no longer be used: expired or revoked
// refresh tokens and sessions, used or expired reset tokens, old outbox
// rows, audit events past audit.retention and forgotten brute-force
// counts. Run does it every database.prune_interval; it returns how many
// rows went.
func (s *Server) Prune(ctx context.Context) (int64, error) {
	st, err := s.PruneStats(ctx)
	return st.Rows, err
}

// PruneStats is Prune, saying how many batches it took and how long the
// longest ran (the refresh-token, session and reset-token tables are
// pruned in primary-key ranges: see strategy.PruneWith).
func (s *Server) PruneStats(ctx context.Context) (strategy.PruneStats, error) {
	st, err := s.tokens.PruneWith(ctx, strategy.PruneOptions{})
	if err == nil && s.throttles != nil {
		var m int64
		m, err = s.throttles.Prune(ctx, time.Now(), s.cfg.BruteForcePolicy())
		st.Rows += m
	}
	return st, err
}

// Ready reports what the server depends on, by name: the database, Redis
// when configured, and the verification cache (whether it is trusted, and
// its Redis subscription), as states and never as counts. The server is ready when
// the database answers; Redis being down slows propagation between
// instances (the outbox still bounds it) and is reported, not fatal.
func (s *Server) Ready(ctx context.Context) routes.Readiness {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r := routes.Readiness{Ready: true, Components: map[string]any{}}
	if err := models.Ping(ctx, s.db); err != nil {
		r.Ready = false
		r.Components["database"] = "down"
	} else {
		r.Components["database"] = "up"
	}
	if s.redis != nil {
		// Redis is reported, not fatal: a hung Redis must not make the
		// probe itself time out.
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := s.redis.Ping(pctx).Err()
		cancel()
		if err != nil {
			r.Components["redis"] = "down"
		} else {
			r.Components["redis"] = "up"
		}
	}
	if s.cache != nil {
		// States only. The counts (entries, hits, misses, outbox reads)
		// roughly track how many users are active: they are served on the
		// metrics listener (authserver_cache_*), not on the public one.
		c := map[string]any{"trusted": s.cache.Stats().Trusted}
		if h := s.feed.Health(); h.Redis != nil {
			c["redis_subscription"] = map[bool]string{true: "up", false: "down"}[h.Redis.Up]
		}
		r.Components["cache"] = c
	} else {
		r.Components["cache"] = "disabled"
	}
	return r
}

// Close releases what New opened: the database when the server opened it
// (never an application's), and the Redis client. Stop Run first.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			errs = append(errs, s.api.Close(ctx))
			cancel()
		}
		if s.redis != nil {
			errs = append(errs, s.redis.Close())
		}
		if s.ownsDB && s.db != nil {
			if sqlDB, err := s.db.DB(); err == nil {
				errs = append(errs, sqlDB.Close())
			}
		}
	})
	return errors.Join(errs...)
}

// nopTarget is the feed's target on an instance without a cache: it only
// publishes.
type nopTarget struct{}

func (nopTarget) Invalidate(uint64, int64) {}
func (nopTarget) Flush()                   {}
func (nopTarget) Distrust()                {}
func (nopTarget) Confirm(time.Time)        {}
func (nopTarget) SeeUser(uint64)           {}
