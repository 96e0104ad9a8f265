package routes

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/strategy"
)

const (
	refreshCookie = "refresh_token"
)

// writeTokens answers with the tokens and sets the refresh cookie.
func (s *server) writeTokens(c *gin.Context, status int, t *strategy.Tokens) {
	s.writeTokensWith(c, status, t, nil)
}

// writeTokensWith is writeTokens with more fields in the answer.
func (s *server) writeTokensWith(c *gin.Context, status int, t *strategy.Tokens, extra gin.H) {
	maxAge := int(t.RefreshExpiresAt.Sub(s.now()) / time.Second)
	s.setRefreshCookie(c, t.RefreshToken, maxAge)
	body := gin.H{
		"access_token":       t.AccessToken,
		"token_type":         "Bearer",
		"expires_in":         t.ExpiresIn,
		"refresh_token":      t.RefreshToken,
		"refresh_expires_in": maxAge,
	}
	for k, v := range extra {
		body[k] = v
	}
	c.JSON(status, body)
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
