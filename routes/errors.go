package routes

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// apiError is an error with its HTTP status and stable code. Handlers
// return these (or the sentinel errors of strategy and models) and
// writeError, the one place that speaks HTTP errors, turns them into
// {"error": {"code", "message"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalidRequest(msg string) error {
	return &apiError{http.StatusBadRequest, "invalid_request", msg}
}

var (
	errTokenMissing      = &apiError{http.StatusUnauthorized, "token_missing", "an Authorization: Bearer token is required"}
	errInvalidResetToken = &apiError{http.StatusBadRequest, "invalid_reset_token", "the reset token is invalid, used or expired"}
	errEmailTaken        = &apiError{http.StatusConflict, "email_taken", "an account with this email already exists"}
	errTooLarge          = &apiError{http.StatusRequestEntityTooLarge, "request_too_large", "the request body is larger than 1 MiB"}
	errCSRF              = &apiError{http.StatusForbidden, "csrf_check_failed", "a refresh from the cookie needs an X-Requested-With header or an allowed Origin"}
	errNotFound          = &apiError{http.StatusNotFound, "not_found", "not found"}
	errUnavailable       = &apiError{http.StatusServiceUnavailable, "service_unavailable", "the service is temporarily unavailable, try again"}
	errInternal          = &apiError{http.StatusInternalServerError, "internal_error", "internal error"}
)

// decisions maps the strategy package's errors to their answers. The
// messages are fixed: nothing of the cause reaches the client.
var decisions = []struct {
	err error
	api *apiError
}{
	{strategy.ErrTokenInvalid, &apiError{http.StatusUnauthorized, "token_invalid", "the token is invalid"}},
	{strategy.ErrTokenExpired, &apiError{http.StatusUnauthorized, "token_expired", "the token has expired"}},
	{strategy.ErrTokenRevoked, &apiError{http.StatusUnauthorized, "token_revoked", "the token has been revoked"}},
	{strategy.ErrRefreshReused, &apiError{http.StatusUnauthorized, "refresh_token_reused", "the refresh token was already used; its login has been signed out"}},
	{strategy.ErrInvalidCredentials, &apiError{http.StatusUnauthorized, "invalid_credentials", "invalid email or password"}},
	{strategy.ErrNotFound, errNotFound},
	{strategy.ErrDeviceLimit, &apiError{http.StatusForbidden, "device_limit", "the account has reached its device limit; sign out another device first"}},
	{models.ErrUnavailable, errUnavailable},
}

// toAPI resolves err to the answer the client gets.
func toAPI(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ns *strategy.NotSupportedError
	if errors.As(err, &ns) {
		return &apiError{http.StatusNotImplemented, "not_supported", ns.Error()}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	for _, d := range decisions {
		if errors.Is(err, d.err) {
			return d.api
		}
	}
	return errInternal
}

// writeError answers the request with err. Causes of 5xx answers are
// logged, never sent.
func (s *server) writeError(c *gin.Context, err error) {
	ae := toAPI(err)
	if ae.Status >= 500 && ae.Status != http.StatusNotImplemented {
		s.log.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method, "route", c.FullPath(), "err", err)
	}
	if ae.Status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="authserver"`)
		if ae.Code != "invalid_credentials" && ae.Code != "token_missing" {
			c.Header("WWW-Authenticate", `Bearer realm="authserver", error="invalid_token"`)
		}
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": gin.H{"code": ae.Code, "message": ae.Message}})
}

// handle adapts a handler that returns an error to gin.
func (s *server) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			s.writeError(c, err)
		}
	}
}
