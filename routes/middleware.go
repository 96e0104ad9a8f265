package routes

import (
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/strategy"
)

const principalKey = "authserver.principal"

// authenticate verifies the Bearer token under the running strategy and
// stores the caller for the handlers. Anything else answers 401.
func (s *server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		if h == "" {
			s.writeError(c, errTokenMissing)
			return
		}
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			s.writeError(c, strategy.ErrTokenInvalid)
			return
		}
		p, err := s.tokens.Verify(c.Request.Context(), strings.TrimSpace(raw))
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// principal is the caller that authenticate verified.
func principal(c *gin.Context) *strategy.Principal {
	p, _ := c.MustGet(principalKey).(*strategy.Principal)
	return p
}

// device describes the client of this request.
func device(c *gin.Context, name string) strategy.DeviceInfo {
	return strategy.DeviceInfo{Name: name, UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}
}
