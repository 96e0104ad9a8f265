package remoteauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Middleware lets a request through to next only when its Bearer token is
// valid, with the caller in the request's context (FromContext). It
// answers itself otherwise: 401 for a missing or invalid token, 503 when
// the auth server cannot tell (fail closed), both as
// {"error":{"code","message"}} with Cache-Control: no-store.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := v.Authenticate(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// Authenticate is the step Middleware runs, for adapters to other
// frameworks (see ginauth): it verifies the request's Bearer token and
// returns the request with the caller in its context and true, or writes
// the 401 or 503 answer to w and returns false.
func (v *Verifier) Authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		// RFC 6750 §3.1: no error code when no credentials were sent.
		writeError(w, http.StatusUnauthorized, `Bearer`, "token_missing", "an Authorization: Bearer token is required")
		return nil, false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		writeError(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid", "the token is invalid")
		return nil, false
	}
	c, err := v.Verify(r.Context(), strings.TrimSpace(token))
	switch {
	case err == nil:
		return r.WithContext(NewContext(r.Context(), c)), true
	case errors.Is(err, ErrInvalidToken):
		writeError(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, "token_invalid", "the token is invalid, expired or revoked")
	default:
		// The cause names the auth server and what went wrong, never the
		// token: it is in no URL and no error message.
		v.log.WarnContext(r.Context(), "remoteauth: request refused, the auth server could not verify its token",
			"method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "", "service_unavailable", "authentication is temporarily unavailable, try again")
	}
	return nil, false
}

// RequireAAL2 lets a request through to next only when the caller that
// Middleware (or Authenticate) verified logged in with a second factor
// (aal2). Put it behind Middleware on the routes that need it.
func RequireAAL2(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if CheckAAL2(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// CheckAAL2 is the step RequireAAL2 runs, for adapters (see ginauth): it
// reports whether the request's verified caller is aal2, and otherwise
// writes the answer, 403 insufficient_aal with the RFC 9470 challenge
// (or 401 token_missing when no caller was verified: the middleware is
// missing in front of it, and failing closed is the safe answer).
func CheckAAL2(w http.ResponseWriter, r *http.Request) bool {
	c, ok := FromContext(r.Context())
	switch {
	case !ok:
		writeError(w, http.StatusUnauthorized, `Bearer`, "token_missing", "an Authorization: Bearer token is required")
		return false
	case c.Claims.AAL != "aal2":
		writeError(w, http.StatusForbidden, `Bearer error="insufficient_user_authentication", error_description="a second factor is required"`,
			"insufficient_aal", "this needs a login with a second factor (aal2)")
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, challenge, code, msg string) {
	h := w.Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
