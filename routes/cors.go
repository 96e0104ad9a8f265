package routes

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// corsPolicy is cors.allowed_origins: the browser origins, exactly as
// listed, that may call the API from another origin with credentials.
// An origin not on the list is treated as if CORS were off: it gets no
// Access-Control-* header and its request goes on as any other. The
// server never sends back an origin it was not configured with, and never
// "*" (which browsers refuse with credentials anyway).
type corsPolicy struct {
	// origins maps a request's Origin to the configured value sent back.
	origins map[string]string
}

// CORS answers that are the same for every allowed origin.
var (
	corsAllowMethods  = []string{"GET, POST, PUT, DELETE"}
	corsAllowHeaders  = []string{"Authorization, Content-Type, X-Auth-Mode, X-Requested-With"}
	corsExposeHeaders = []string{"Date, Retry-After, WWW-Authenticate, X-Request-Id"}
	corsMaxAge        = []string{strconv.Itoa(int(corsPreflightCache.Seconds()))}
	corsTrue          = []string{"true"}
)

// corsPreflightCache is how long a browser may reuse a preflight answer
// (Chromium caps it at 2 hours).
const corsPreflightCache = 10 * time.Minute

// newCORS builds the policy; nil when no origin is configured (no CORS
// headers at all). Origins are compared as browsers send them: scheme and
// host in lower case, no trailing slash (config.Validate refuses "*").
func newCORS(origins []string) *corsPolicy {
	if len(origins) == 0 {
		return nil
	}
	p := &corsPolicy{origins: map[string]string{}}
	for _, o := range origins {
		o = strings.ToLower(strings.TrimSuffix(o, "/"))
		p.origins[o] = o
	}
	return p
}

// handler is the CORS middleware. It runs before routing decides
// anything, so that a preflight to any path is answered; a preflight is an
// OPTIONS request with Origin and Access-Control-Request-Method. Verify
// answers OPTIONS too (forward auth): a proxy's OPTIONS check carries no
// Access-Control-Request-Method and stays a verification, and a preflight
// from an origin that is not allowed goes on to verify (and its 401) as
// if CORS were off.
func (p *corsPolicy) handler() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		// The answer depends on Origin whether or not this one is
		// allowed: shared caches must keep them apart.
		h.Add("Vary", "Origin")
		values := c.Request.Header["Origin"]
		if len(values) != 1 {
			c.Next()
			return
		}
		allowed, ok := p.origins[values[0]]
		if !ok {
			c.Next()
			return
		}
		h["Access-Control-Allow-Origin"] = []string{allowed}
		h["Access-Control-Allow-Credentials"] = corsTrue
		if c.Request.Method == http.MethodOptions && c.Request.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h["Access-Control-Allow-Methods"] = corsAllowMethods
			h["Access-Control-Allow-Headers"] = corsAllowHeaders
			h["Access-Control-Max-Age"] = corsMaxAge
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		h["Access-Control-Expose-Headers"] = corsExposeHeaders
		c.Next()
	}
}

// CORS is the CORS middleware of cors.allowed_origins, for an application
// that mounts the API into its own router: use it on the engine
// (router.Use), so that it sees preflights to every path before routing.
// The standalone Handler applies it by itself. Without allowed origins it
// does nothing.
func (a *API) CORS() gin.HandlerFunc {
	if a.s.cors == nil {
		return func(c *gin.Context) { c.Next() }
	}
	return a.s.cors.handler()
}
