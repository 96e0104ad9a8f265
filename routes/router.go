// Package routes is the HTTP layer: the Gin router, the handlers, the auth
// middleware, and writeError, the one place where errors become HTTP status
// codes and {"error": {"code", "message"}} bodies.
package routes

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// Deps are what the router is built from.
type Deps struct {
	Config *config.Config
	DB     *gorm.DB
	Tokens *strategy.Service
	Log    *slog.Logger
	// Mailer delivers password-reset tokens; nil means LogMailer.
	Mailer Mailer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type server struct {
	cfg    *config.Config
	db     *gorm.DB
	tokens *strategy.Service
	log    *slog.Logger
	mailer Mailer
	now    func() time.Time
	// dummyHash is compared against when the email is unknown, so that a
	// login for an unknown email costs what a wrong password costs.
	dummyHash []byte
}

// New builds the router.
func New(d Deps) (*gin.Engine, error) {
	s := &server{cfg: d.Config, db: d.DB, tokens: d.Tokens, log: d.Log, mailer: d.Mailer, now: d.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.mailer == nil {
		s.mailer = LogMailer{Log: s.log}
	}
	if s.now == nil {
		s.now = time.Now
	}
	h, err := bcrypt.GenerateFromPassword([]byte(strategy.NewSecret(16)), d.Config.Password.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	s.dummyHash = h

	r := gin.New()
	r.HandleMethodNotAllowed = false
	if err := r.SetTrustedProxies(d.Config.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	r.Use(s.logRequests(), gin.CustomRecovery(func(c *gin.Context, _ any) {
		s.writeError(c, errInternal)
	}))
	r.NoRoute(func(c *gin.Context) { s.writeError(c, errNotFound) })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.handle(s.ready))

	api := r.Group("/api/v1", noStore)
	api.GET("/strategy", s.strategyInfo)
	api.POST("/auth/register", s.handle(s.register))
	api.POST("/auth/login", s.handle(s.login))
	api.POST("/auth/refresh", s.handle(s.refresh))
	api.POST("/auth/password-reset", s.handle(s.resetRequest))
	api.POST("/auth/password-reset/confirm", s.handle(s.resetConfirm))

	authed := api.Group("", s.authenticate())
	authed.GET("/auth/verify", s.handle(s.verify))
	authed.POST("/auth/logout", s.handle(s.logout))
	authed.POST("/auth/logout-all", s.handle(s.logoutAll))
	authed.POST("/auth/logout-others", s.handle(s.logoutOthers))
	authed.GET("/me", s.handle(s.me))
	authed.PUT("/me/password", s.handle(s.changePassword))
	authed.DELETE("/me", s.handle(s.deleteMe))
	authed.GET("/sessions", s.handle(s.listSessions))
	authed.DELETE("/sessions/:id", s.handle(s.revokeSession))
	return r, nil
}

// noStore keeps tokens and account data out of every cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.Next()
}

// logRequests logs one line per request: method, route, status, latency
// and client IP. Never headers, query strings or bodies: they carry tokens
// and passwords.
func (s *server) logRequests() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "(no route)"
		}
		s.log.InfoContext(c.Request.Context(), "request", "method", c.Request.Method, "route", route,
			"status", c.Writer.Status(), "latency", time.Since(start), "ip", c.ClientIP())
	}
}

func (s *server) ready(c *gin.Context) error {
	if err := models.Ping(c.Request.Context(), s.db); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}

func (s *server) strategyInfo(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"name": s.tokens.Name(), "capabilities": s.tokens.Capabilities()})
}
