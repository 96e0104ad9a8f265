package routes

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/bruteforce"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/ratelimit"
	"github.com/revocable/authserver/strategy"
)

// apiError is an error with its HTTP status and stable code. Handlers
// return these (or the sentinel errors of strategy and models) and
// writeError, the one place that speaks HTTP errors, turns them into
// {"error": {"code", "message", "request_id"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header, in
	// whole seconds.
	RetryAfter int
	// Challenge, when set, is the WWW-Authenticate header of a 401 in
	// place of the Bearer one (introspection's clients use Basic).
	Challenge string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalidRequest(msg string) error {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

var (
	errTokenMissing = &apiError{Status: http.StatusUnauthorized, Code: "token_missing", Message: "an Authorization: Bearer token is required"}
	errTooLarge     = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large", Message: "the request body is larger than 1 MiB"}
	// errUnsupportedMediaType answers a JSON endpoint's body sent as
	// anything but JSON (see readJSONBody).
	errUnsupportedMediaType = &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send the request body as JSON with the header Content-Type: application/json"}
	// errCrossSite answers a browser's cross-site login, registration or
	// refresh (see sameSiteOnly).
	errCrossSite   = &apiError{Status: http.StatusForbidden, Code: "csrf_check_failed", Message: "a browser may log in, register or refresh only from this server's origin or an origin of cors.allowed_origins or cookies.allowed_origins"}
	errCSRF        = &apiError{Status: http.StatusForbidden, Code: "csrf_check_failed", Message: "a refresh from the cookie needs an X-Requested-With header or an allowed Origin"}
	errNotFound    = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	errUnavailable = &apiError{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Message: "the service is temporarily unavailable, try again", RetryAfter: 1}
	errInternal    = &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
)

// rateLimited is the answer of a request over a rate limit or of a
// throttled login: 429 with Retry-After in whole seconds, at least 1.
func rateLimited(after time.Duration) *apiError {
	return &apiError{
		Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message:    "too many requests; retry after the time in Retry-After",
		RetryAfter: max(1, int((after+time.Second-1)/time.Second)),
	}
}

// decisions maps the strategy package's errors to their answers. The
// messages are fixed: nothing of the cause reaches the client.
var decisions = []struct {
	err error
	api *apiError
}{
	{strategy.ErrTokenInvalid, &apiError{Status: http.StatusUnauthorized, Code: "token_invalid", Message: "the token is invalid"}},
	{strategy.ErrTokenExpired, &apiError{Status: http.StatusUnauthorized, Code: "token_expired", Message: "the token has expired"}},
	{strategy.ErrTokenRevoked, &apiError{Status: http.StatusUnauthorized, Code: "token_revoked", Message: "the token has been revoked"}},
	{strategy.ErrRefreshReused, &apiError{Status: http.StatusUnauthorized, Code: "refresh_token_reused", Message: "the refresh token was already used; its login has been signed out"}},
	{strategy.ErrInvalidCredentials, &apiError{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "invalid email or password"}},
	{strategy.ErrNotFound, errNotFound},
	{strategy.ErrDeviceLimit, &apiError{Status: http.StatusForbidden, Code: "device_limit", Message: "the account has reached its device limit; sign out another device first"}},
	{strategy.ErrEmailTaken, &apiError{Status: http.StatusConflict, Code: "email_taken", Message: "an account with this email already exists"}},
	{strategy.ErrInvalidResetToken, &apiError{Status: http.StatusBadRequest, Code: "invalid_reset_token", Message: "the reset token is invalid, used or expired"}},
	{strategy.ErrMFAPending, &apiError{Status: http.StatusConflict, Code: "mfa_enrollment_pending", Message: "an unconfirmed factor exists; confirm it, or wait until it expires (10 minutes)"}},
	{strategy.ErrMFAConfirmed, &apiError{Status: http.StatusConflict, Code: "mfa_already_confirmed", Message: "the factor is confirmed already"}},
	{strategy.ErrMFACodeInvalid, &apiError{Status: http.StatusUnauthorized, Code: "invalid_mfa_code", Message: "the code is wrong, already used or outside its time window"}},
	{strategy.ErrRecoveryCodeInvalid, &apiError{Status: http.StatusUnauthorized, Code: "invalid_recovery_code", Message: "the recovery code is wrong or already used"}},
	{strategy.ErrMFATokenInvalid, &apiError{Status: http.StatusUnauthorized, Code: "invalid_mfa_token", Message: "the mfa_token is invalid, used, expired or ended by wrong codes; log in again"}},
	{strategy.ErrInsufficientAAL, errInsufficientAAL},
	{strategy.ErrBusy, errUnavailable},
	{passhash.ErrBusy, errUnavailable},
	{bruteforce.ErrUnavailable, errUnavailable},
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
		return &apiError{Status: http.StatusNotImplemented, Code: "not_supported", Message: ns.Error()}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	var le *ratelimit.LimitedError
	if errors.As(err, &le) {
		return rateLimited(le.RetryAfter())
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
	if s.metrics != nil {
		// The metrics middleware reads the outcome from it.
		_ = c.Error(err)
	}
	switch {
	case errors.Is(err, passhash.ErrBusy) || errors.Is(err, strategy.ErrBusy):
		// Load shedding, by design: under a flood an error line per
		// request would only add to the load.
		s.log.DebugContext(c.Request.Context(), "request shed", "route", c.FullPath(), "err", err, "request_id", requestID(c))
	case ae.Status >= 500 && ae.Status != http.StatusNotImplemented:
		s.log.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method, "route", c.FullPath(), "err", err, "request_id", requestID(c))
	}
	if ae.Status == http.StatusUnauthorized {
		if ae.Challenge != "" {
			c.Header("WWW-Authenticate", ae.Challenge)
		} else if ae.Code == "invalid_credentials" || ae.Code == "token_missing" || isMFACodeError(ae.Code) {
			c.Header("WWW-Authenticate", `Bearer realm="authserver"`)
		} else {
			c.Header("WWW-Authenticate", `Bearer realm="authserver", error="invalid_token"`)
		}
	}
	if ae.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if c.GetBool(oauthErrorsKey) {
		c.AbortWithStatusJSON(ae.Status, gin.H{"error": oauthCode(ae), "error_description": ae.Message})
		return
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": gin.H{"code": ae.Code, "message": ae.Message, "request_id": requestID(c)}})
}

// oauthErrorsKey marks a request whose errors are answered as OAuth
// errors (see oauthErrors).
const oauthErrorsKey = "authserver.oauth_errors"

// oauthErrors makes writeError answer the route's errors in the shape of
// RFC 6749 §5.2, {"error": code, "error_description": message}, which
// OAuth clients (introspection's resource servers) parse, in place of the
// API's own. The request id stays in X-Request-Id.
func oauthErrors(c *gin.Context) {
	c.Set(oauthErrorsKey, true)
	c.Next()
}

// oauthCode is the RFC 6749 error code of an answer: invalid_client and
// invalid_request as they are (a body too large or a route not enabled
// are requests the server will not take), and for what OAuth has no
// token-endpoint code for, RFC 6749 §4.1.2.1's temporarily_unavailable
// (a rate limit, an outage) and server_error.
func oauthCode(ae *apiError) string {
	switch {
	case ae.Code == "invalid_client":
		return "invalid_client"
	case ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case ae.Status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}

// isMFACodeError: the 401s of a wrong second factor, which are about
// credentials, not about a token.
func isMFACodeError(code string) bool {
	return code == "invalid_mfa_code" || code == "invalid_recovery_code" || code == "invalid_mfa_token"
}

// handle adapts a handler that returns an error to gin.
func (s *server) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			s.writeError(c, err)
		}
	}
}
