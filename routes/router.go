// Package routes is the HTTP layer: the Gin router, the handlers, the auth
// middleware, and writeError, the one place where errors become HTTP status
// codes and {"error": {"code", "message", "request_id"}} bodies.
package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/revocable/authserver/apidoc"
	"github.com/revocable/authserver/bruteforce"
	jsclient "github.com/revocable/authserver/clients/js"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/demo"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/metrics"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/ratelimit"
	"github.com/revocable/authserver/strategy"
)

// Deps are what the router is built from.
type Deps struct {
	Config *config.Config
	Tokens *strategy.Service
	Log    *slog.Logger
	// Mail is the mail outbox; required.
	Mail *mail.Outbox
	// MailEnabled says that mail really leaves (a transport or the
	// application's Mailer): registrations then queue a verification.
	MailEnabled bool
	// Ready reports the state of what the server depends on, by name, for
	// GET /readyz; nil means the database alone.
	Ready func(ctx context.Context) Readiness
	// Limits holds the ratelimit.* rules (rule names as the config keys).
	Limits *ratelimit.Limiter
	// Throttle is the per-account brute-force throttle.
	Throttle *bruteforce.Throttle
	// Hasher runs bcrypt, a bounded number at a time.
	Hasher *passhash.Hasher
	// Metrics, when set, counts requests and their outcomes (metrics.addr).
	Metrics *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Readiness is the answer of /readyz: whether the server can answer
// requests, and the state of each dependency.
type Readiness struct {
	Ready      bool
	Components map[string]any
}

type server struct {
	cfg    *config.Config
	db     *gorm.DB
	tokens *strategy.Service
	log    *slog.Logger
	mail   *mail.Outbox
	// mailEnabled: see Deps.MailEnabled.
	mailEnabled bool
	ready       func(ctx context.Context) Readiness
	now         func() time.Time
	ids         *idSource
	// proxies are server.trusted_proxies, parsed.
	proxies  *proxySet
	limits   *ratelimit.Limiter
	throttle *bruteforce.Throttle
	hasher   *passhash.Hasher
	metrics  *metrics.Metrics
	// cookiePath is the refresh cookie's path: the auth routes of the
	// mount point.
	cookiePath string
	tailOnce   sync.Once
	tail       []byte
	// introspection is introspection.clients (nil: none, 404).
	introspection *introspectionClients
	// cors is cors.allowed_origins (nil: no CORS headers).
	cors *corsPolicy
	// openapi is the OpenAPI document, as JSON.
	openapi []byte
	// client is the browser client (clients/js), served at client.js;
	// clientVersioned is its content-hashed path.
	client          jsclient.Module
	clientVersioned string
}

// API is the HTTP layer, built once. It is served alone (Handler) or
// mounted into an application's own router (Mount, Authenticate).
type API struct {
	s *server
}

// New builds the HTTP layer.
func New(d Deps) (*API, error) {
	if d.Limits == nil || d.Throttle == nil || d.Hasher == nil || d.Mail == nil {
		return nil, errors.New("routes: the limiter, the brute-force throttle, the hasher and the mail outbox are required")
	}
	s := &server{
		cfg: d.Config, db: d.Tokens.DB(), tokens: d.Tokens, log: d.Log, mail: d.Mail, mailEnabled: d.MailEnabled, ready: d.Ready, now: d.Now,
		ids: newIDSource(), limits: d.Limits, throttle: d.Throttle, hasher: d.Hasher, metrics: d.Metrics,
		client: jsclient.Load(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.proxies, err = parseProxies(d.Config.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	if s.introspection, err = newIntrospectionClients(d.Config.Introspection.Clients, d.Config.Introspection.RefreshTokenClients); err != nil {
		return nil, err
	}
	s.cors = newCORS(d.Config.CORS.AllowedOrigins)
	if s.openapi, err = apidoc.JSON(); err != nil {
		return nil, err
	}
	s.mail.Handle(mail.PasswordReset, s.prepareReset)
	s.mail.Handle(mail.VerifyEmail, s.prepareVerify)
	return &API{s: s}, nil
}

// Handler is the whole server: the API under /api/v1, the health checks,
// one log line per request and recovery from panics.
func (a *API) Handler() (*gin.Engine, error) {
	s := a.s
	r := gin.New()
	r.HandleMethodNotAllowed = false
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(s.cfg.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	r.Use(chain(s.requestContext(), s.bodyDeadline(), s.observeRequests(), s.logRequests(), gin.CustomRecovery(func(c *gin.Context, _ any) {
		s.writeError(c, errInternal)
	}))...)
	if s.cors != nil {
		r.Use(s.cors.handler())
	}
	r.NoRoute(func(c *gin.Context) { s.writeError(c, errNotFound) })
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.handle(s.readyz))
	s.routes(r.Group("/api/v1"))
	if s.cfg.Demo.Enabled {
		page, err := demo.Handler([]demo.Target{{Name: s.tokens.Name(), API: "/api/v1"}})
		if err != nil {
			return nil, err
		}
		h := gin.WrapH(http.StripPrefix("/demo", page))
		r.GET("/demo/*file", h)
		r.HEAD("/demo/*file", h)
	}
	return r, nil
}

// Mount registers the API on r, an application's router or group: the
// paths are relative to it (r.Group("/api/v1") gives the standard ones).
// The application's own middleware runs first; ours only adds the request
// id and the no-store header. The refresh cookie is scoped to the
// mounted auth routes.
func (a *API) Mount(r gin.IRouter) {
	g := r.Group("", chain(a.s.requestContext(), a.s.bodyDeadline(), a.s.observeRequests())...)
	a.s.routes(g)
}

// Authenticate is the middleware that protects an application's own
// routes: it verifies the Bearer token under the running strategy and
// stores the caller (see Caller), or answers 401 (503 when the state
// cannot be read).
func (a *API) Authenticate() gin.HandlerFunc {
	s := a.s
	return func(c *gin.Context) {
		p, ok := s.verifyBearer(c)
		if !ok {
			return
		}
		c.Set(principalKey, p)
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), callerKey{}, p))
		c.Next()
	}
}

// routes registers every API route on g.
func (s *server) routes(g *gin.RouterGroup) {
	s.cookiePath = strings.TrimSuffix(g.BasePath(), "/") + "/auth"
	g.GET("/openapi.json", s.openAPI)
	s.clientVersioned = strings.TrimSuffix(g.BasePath(), "/") + "/client/" + s.client.Hash + ".js"
	g.GET("/client.js", s.clientJS)
	g.GET("/client/:file", s.clientJSVersioned)
	api := g.Group("", noStore)
	api.GET("/strategy", s.strategyInfo)
	sameSite := s.sameSiteOnly()
	api.POST("/auth/register", chain(s.limit("register_per_ip"), sameSite, s.handle(s.register))...)
	api.POST("/auth/login", chain(s.countLogins(), s.limit("login_per_ip"), sameSite, s.handle(s.login))...)
	api.POST("/auth/refresh", chain(s.limit("refresh_per_ip"), s.countRefreshes(), sameSite, s.handle(s.refresh))...)
	api.POST("/auth/password-reset", chain(s.limit("reset_per_ip"), s.handle(s.resetRequest))...)
	// Confirming hashes the new password: the same per-IP budget.
	api.POST("/auth/password-reset/confirm", chain(s.limit("reset_per_ip"), s.countRevocation(metrics.RevokePassword), s.handle(s.resetConfirm))...)
	// Mailed-token routes share the reset budget per IP.
	api.POST("/auth/verify-email", chain(s.limit("reset_per_ip"), s.handle(s.verifyEmail))...)
	api.POST("/auth/verify-email/resend", chain(s.limit("reset_per_ip"), s.handle(s.verifyResend))...)
	api.POST("/auth/email-change/confirm", chain(s.limit("reset_per_ip"), s.handle(s.confirmEmailChange))...)

	verifyLimit := s.limit("verify_per_ip")
	verify := chain(verifyLimit, s.verify)
	for _, m := range forwardAuthMethods {
		api.Handle(m, verifyPath, verify...)
	}
	api.POST("/auth/introspect", chain(oauthErrors, verifyLimit, s.handle(s.introspect))...)
	authed := api.Group("", s.authenticate())
	authed.POST("/auth/logout", chain(s.countRevocation(metrics.RevokeLogout), s.handle(s.logout))...)
	authed.POST("/auth/logout-all", chain(s.countRevocation(metrics.RevokeLogoutAll), s.handle(s.logoutAll))...)
	authed.POST("/auth/logout-others", chain(s.countRevocation(metrics.RevokeLogoutOthers), s.handle(s.logoutOthers))...)
	authed.GET("/me", s.handle(s.me))
	authed.GET("/me/events", s.handle(s.myEvents))
	authed.PUT("/me/password", chain(s.countRevocation(metrics.RevokePassword), s.handle(s.changePassword))...)
	authed.PUT("/me/email", s.handle(s.changeEmail))
	authed.DELETE("/me", chain(s.countRevocation(metrics.RevokeDeletion), s.handle(s.deleteMe))...)
	api.POST("/auth/mfa/verify", chain(s.countMFA(), s.limit("login_per_ip"), sameSite, s.handle(s.mfaVerify))...)
	authed.GET("/me/mfa", s.handle(s.listFactors))
	authed.POST("/me/mfa/totp", s.handle(s.enrollTOTP))
	authed.POST("/me/mfa/totp/:id/confirm", chain(s.countRevocation(metrics.RevokeMFA), s.handle(s.confirmTOTP))...)
	authed.DELETE("/me/mfa/totp/:id", chain(s.countRevocation(metrics.RevokeMFA), s.handle(s.removeTOTP))...)
	authed.POST("/me/mfa/recovery-codes", s.handle(s.regenerateRecoveryCodes))
	authed.GET("/sessions", s.handle(s.listSessions))
	authed.DELETE("/sessions/:id", chain(s.countRevocation(metrics.RevokeDevice), s.handle(s.revokeSession))...)
	if s.cfg.Demo.Enabled {
		authed.GET("/demo/state", s.handle(s.demoState))
	}
}

// demoState answers, in demo mode only, what the running strategy stores
// about the caller's own account (demo.LoadState).
func (s *server) demoState(c *gin.Context) error {
	st, err := demo.LoadState(c.Request.Context(), s.db, s.tokens.Name(), principal(c).UserID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// forwardAuthMethods are the methods GET /api/v1/auth/verify answers alike:
// proxies doing forward auth send the original request's method.
var forwardAuthMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// limit applies the named ratelimit rule to the client IP (as
// server.trusted_proxies says, see clientIP), before anything else of the
// request is read: a refused request costs no decoding and no bcrypt, and
// counts as no login failure.
func (s *server) limit(rule string) gin.HandlerFunc {
	r, ok := s.limits.Rule(rule)
	if !ok {
		panic("routes: no rate limit rule " + rule)
	}
	if r.Off() {
		return nil // chain drops it: an off rule costs nothing
	}
	return func(c *gin.Context) {
		d, err := s.limits.Allow(c.Request.Context(), rule, ratelimit.IPKey(s.clientIP(c)))
		if err == nil {
			err = d.Err()
		}
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.Next()
	}
}

// noStore keeps tokens and account data out of every cache. (HTTP/1.0's
// Pragma: no-cache is not sent: every cache in use understands
// Cache-Control, and the header would cost the hottest path bytes.)
func noStore(c *gin.Context) {
	c.Writer.Header()["Cache-Control"] = noStoreValue
	c.Next()
}

var noStoreValue = []string{"no-store"}

// logRequests logs one line per request: method, route, status, latency,
// client IP and request id. Never headers, query strings or bodies: they
// carry tokens and passwords. A verification that succeeds logs at debug
// level, every other request at info: a proxy doing forward auth calls
// verify for every request it passes on, and logs those requests itself;
// at info they would double the log and cost the hottest path a tenth of
// its throughput (measured). log.level debug shows them all.
func (s *server) logRequests() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		ctx := c.Request.Context()
		route := c.FullPath()
		level := slog.LevelInfo
		if c.Writer.Status() < 300 && strings.HasSuffix(route, verifyPath) {
			level = slog.LevelDebug
		}
		if !s.log.Enabled(ctx, level) {
			return
		}
		if route == "" {
			route = "(no route)"
		}
		s.log.LogAttrs(ctx, level, "request",
			slog.String("method", c.Request.Method), slog.String("route", route),
			slog.Int("status", c.Writer.Status()), slog.Duration("latency", time.Since(start)),
			slog.String("ip", s.clientIP(c)), slog.String("request_id", requestID(c)))
	}
}

// verifyPath is the verification route, below the API's mount point.
const verifyPath = "/auth/verify"

func (s *server) readyz(c *gin.Context) error {
	var r Readiness
	if s.ready != nil {
		r = s.ready(c.Request.Context())
	} else {
		r = Readiness{Ready: true, Components: map[string]any{"database": "up"}}
		if err := s.tokens.Ping(c.Request.Context()); err != nil {
			r = Readiness{Ready: false, Components: map[string]any{"database": "down"}}
		}
	}
	status, code := http.StatusOK, "ready"
	if !r.Ready {
		status, code = http.StatusServiceUnavailable, "unavailable"
	}
	c.JSON(status, gin.H{"status": code, "components": r.Components})
	return nil
}

func (s *server) strategyInfo(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"name": s.tokens.Name(), "capabilities": s.tokens.Capabilities()})
}
