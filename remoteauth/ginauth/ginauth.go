// Package ginauth adapts remoteauth to Gin. It is a package of its own so
// that a net/http service importing remoteauth does not link Gin.
package ginauth

import (
	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/remoteauth"
)

// Middleware is remoteauth's Middleware as a Gin handler: it lets the
// request go on only with a valid Bearer token, the caller in the request's
// context (Caller), and otherwise answers 401, or 503 when the auth server
// cannot tell, and aborts the chain.
func Middleware(v *remoteauth.Verifier) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, ok := v.Authenticate(c.Writer, c.Request)
		if !ok {
			c.Abort()
			return
		}
		c.Request = r
		c.Next()
	}
}

// RequireAAL2 lets the request go on only when the caller that Middleware
// verified logged in with a second factor (aal2); otherwise it answers
// 403 insufficient_aal and aborts. Put it after Middleware, on the routes
// or groups that need it.
func RequireAAL2() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !remoteauth.CheckAAL2(c.Writer, c.Request) {
			c.Abort()
			return
		}
		c.Next()
	}
}

// Caller returns the caller that Middleware verified.
func Caller(c *gin.Context) (*remoteauth.Caller, bool) {
	return remoteauth.FromContext(c.Request.Context())
}
