package routes

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/metrics"
	"github.com/revocable/authserver/strategy"
)

// The metrics middleware. Each outcome is read where the router sees it
// decided: the status the request was answered with and, for failures,
// the error writeError answered it with (which it attaches to the gin
// context with c.Error when metrics are on). Every constructor here
// returns nil when metrics are off, and chain drops nil handlers, so that
// a server without metrics runs exactly the handlers it ran before.

// chain drops the nil handlers (the metrics middleware when metrics are
// off).
func chain(hs ...gin.HandlerFunc) []gin.HandlerFunc {
	out := hs[:0:0]
	for _, h := range hs {
		if h != nil {
			out = append(out, h)
		}
	}
	return out
}

// lastError is the error the request was answered with, if any.
func lastError(c *gin.Context) error {
	if e := c.Errors.Last(); e != nil {
		return e.Err
	}
	return nil
}

// observeRequests counts every request by method, route pattern and
// status, and times it.
func (s *server) observeRequests() gin.HandlerFunc {
	m := s.metrics
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = metrics.NoRoute
		}
		m.Request(c.Request.Method, route, c.Writer.Status(), time.Since(start))
	}
}

// countVerification counts the outcome of a verification: err is what
// it failed with, nil when it succeeded. One that could not be decided
// (503) is not counted.
func (s *server) countVerification(err error) {
	if s.metrics == nil {
		return
	}
	if err == nil {
		s.metrics.Verification(metrics.VerifyOK)
		return
	}
	if r, ok := verifyResult(err); ok {
		s.metrics.Verification(r)
	}
}

// verifyResult classifies the error a verification failed with.
func verifyResult(err error) (metrics.VerifyResult, bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, strategy.ErrTokenExpired):
		return metrics.VerifyExpired, true
	case errors.Is(err, strategy.ErrTokenRevoked):
		return metrics.VerifyRevoked, true
	case errors.Is(err, strategy.ErrTokenInvalid), errors.Is(err, errTokenMissing):
		return metrics.VerifyInvalid, true
	}
	return 0, false
}

// countLogins goes in front of the login's rate limit, so that refusals
// by it count as rate_limited.
func (s *server) countLogins() gin.HandlerFunc {
	m := s.metrics
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		c.Next()
		if c.Writer.Status() < http.StatusMultipleChoices {
			m.Login(metrics.LoginSuccess)
			return
		}
		switch toAPI(lastError(c)).Code {
		case "invalid_credentials":
			m.Login(metrics.LoginInvalidCredentials)
		case "rate_limited":
			m.Login(metrics.LoginRateLimited)
		default:
			m.Login(metrics.LoginError)
		}
	}
}

// countRefreshes goes after the refresh's rate limit: a refused request
// is no refresh attempt (the rate limit metrics count it).
func (s *server) countRefreshes() gin.HandlerFunc {
	m := s.metrics
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		c.Next()
		status := c.Writer.Status()
		switch {
		case status < http.StatusMultipleChoices:
			m.Refresh(metrics.RefreshOK)
		case errors.Is(lastError(c), strategy.ErrRefreshReused):
			m.Refresh(metrics.RefreshReused)
		case status >= http.StatusInternalServerError:
			m.Refresh(metrics.RefreshError)
		default:
			m.Refresh(metrics.RefreshInvalid)
		}
	}
}

// countRevocation counts a revocation of kind k when the request that
// makes it succeeds.
func (s *server) countRevocation(k metrics.RevocationKind) gin.HandlerFunc {
	m := s.metrics
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		c.Next()
		if c.Writer.Status() < http.StatusMultipleChoices && len(c.Errors) == 0 {
			m.Revocation(k)
		}
	}
}

// countMFA counts the second steps of logins by result.
func (s *server) countMFA() gin.HandlerFunc {
	m := s.metrics
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		c.Next()
		if c.Writer.Status() < http.StatusMultipleChoices {
			m.MFA(metrics.MFAOK)
			return
		}
		switch toAPI(lastError(c)).Code {
		case "invalid_mfa_code", "invalid_recovery_code":
			m.MFA(metrics.MFAInvalidCode)
		case "invalid_mfa_token":
			m.MFA(metrics.MFAInvalidToken)
		case "rate_limited":
			m.MFA(metrics.MFARateLimited)
		default:
			m.MFA(metrics.MFAError)
		}
	}
}
