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

// authModeHeader picks, per request, where the refresh token of an answer
// goes (see authMode). Browsers' clients/js sends it on every call.
const authModeHeader = "X-Auth-Mode"

// authMode is where a login, refresh, password change or logout-others
// answer puts the refresh token.
type authMode int

const (
	// modeLegacy (no X-Auth-Mode): the cookie and the JSON body, as before
	// the header existed, except for a refresh that presented the cookie,
	// which is always answered in cookie mode: otherwise any script of
	// the page could POST /auth/refresh with credentials and read the
	// long-lived token the httpOnly cookie is there to hide.
	modeLegacy authMode = iota
	// modeCookie ("cookie"): the httpOnly cookie only; the JSON carries
	// no refresh_token, so script can read the short-lived access token
	// and nothing else.
	modeCookie
	// modeBody ("body"): the JSON body only, no cookie: cross-site apps
	// and clients that are not browsers keep the token themselves.
	modeBody
)

// authModeOf reads X-Auth-Mode; anything but absent, "cookie" or "body"
// is the client's mistake, refused before anything changes.
func authModeOf(c *gin.Context) (authMode, error) {
	v := c.Request.Header.Values(authModeHeader)
	if len(v) == 0 {
		return modeLegacy, nil
	}
	if len(v) == 1 {
		switch strings.ToLower(strings.TrimSpace(v[0])) {
		case "cookie":
			return modeCookie, nil
		case "body":
			return modeBody, nil
		}
	}
	return modeLegacy, invalidRequest(authModeHeader + " must be cookie or body")
}

// writeTokens answers with the tokens, the refresh token where mode says.
// iat and expires_at are the server's clock (Unix seconds) at issue: with
// expires_in they let a client whose clock is wrong measure the token's
// life from when it received it, not from its own idea of the time.
func (s *server) writeTokens(c *gin.Context, status int, t *strategy.Tokens, mode authMode) {
	s.writeTokensWith(c, status, t, mode, nil)
}

// writeTokensWith is writeTokens with more fields in the answer.
func (s *server) writeTokensWith(c *gin.Context, status int, t *strategy.Tokens, mode authMode, extra gin.H) {
	now := s.now()
	maxAge := int(t.RefreshExpiresAt.Sub(now) / time.Second)
	if mode != modeBody {
		s.setRefreshCookie(c, t.RefreshToken, maxAge)
	}
	body := gin.H{
		"access_token":       t.AccessToken,
		"token_type":         "Bearer",
		"expires_in":         t.ExpiresIn,
		"iat":                now.Unix(),
		"expires_at":         now.Unix() + t.ExpiresIn,
		"refresh_expires_in": maxAge,
	}
	if mode != modeCookie {
		body["refresh_token"] = t.RefreshToken
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
