package routes

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/strategy"
)

const (
	refreshCookie = "refresh_token"
)

// writeTokens answers with the tokens and sets the refresh cookie.
func (s *server) writeTokens(c *gin.Context, status int, t *strategy.Tokens) {
	maxAge := int(t.RefreshExpiresAt.Sub(s.now()) / time.Second)
	s.setRefreshCookie(c, t.RefreshToken, maxAge)
	c.JSON(status, gin.H{
		"access_token":       t.AccessToken,
		"token_type":         "Bearer",
		"expires_in":         t.ExpiresIn,
		"refresh_token":      t.RefreshToken,
		"refresh_expires_in": maxAge,
	})
}

func (s *server) setRefreshCookie(c *gin.Context, value string, maxAge int) {
	if maxAge <= 0 {
		value, maxAge = "", -1
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: refreshCookie, Value: value, Path: s.cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteStrictMode,
	})
}

func (s *server) clearRefreshCookie(c *gin.Context) { s.setRefreshCookie(c, "", -1) }

// csrfOK is the check for a refresh that relies on the cookie: SameSite
// already keeps other sites' requests from carrying it in current
// browsers; a custom header (which a cross-site form cannot set without a
// CORS preflight) or an allowed Origin makes it hold in the others too.
func (s *server) csrfOK(c *gin.Context) bool {
	if c.GetHeader("X-Requested-With") != "" {
		return true
	}
	origin := c.GetHeader("Origin")
	return origin != "" && slices.Contains(s.cfg.Cookies.AllowedOrigins, origin)
}

// sameSiteOnly refuses a browser's cross-site request to the routes that
// set or read the refresh cookie (login, register, refresh): a top-level
// cross-site form POST may carry and set a SameSite=Strict cookie, so a
// foreign page could otherwise log the victim's browser into the
// attacker's account (login CSRF) or spend its refresh cookie.
//
// Browsers say where a request comes from; other clients send neither
// header and are not concerned. In order:
//   - Sec-Fetch-Site: same-origin is the browser's own word: allowed (it
//     holds behind a proxy that rewrites Host, where Origin cannot be
//     compared);
//   - an Origin is allowed when it is this server's (its host is the
//     request's Host) or listed in cors.allowed_origins or
//     cookies.allowed_origins; any other, "null" included, is refused;
//   - with no Origin, Sec-Fetch-Site: cross-site is refused.
func (s *server) sameSiteOnly() gin.HandlerFunc {
	allowed := map[string]bool{}
	for _, o := range append(slices.Clone(s.cfg.Cookies.AllowedOrigins), s.cfg.CORS.AllowedOrigins...) {
		allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return func(c *gin.Context) {
		if !crossSiteAllowed(c.Request, allowed) {
			s.writeError(c, errCrossSite)
			return
		}
		c.Next()
	}
}

func crossSiteAllowed(r *http.Request, allowed map[string]bool) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "same-origin" {
		return true
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) != 1 {
			return false
		}
		o := strings.ToLower(origins[0])
		if allowed[o] {
			return true
		}
		u, err := url.Parse(o)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
	return site != "cross-site"
}
