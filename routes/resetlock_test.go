package routes_test

import (
	"net/http"
	"testing"

	"github.com/revocable/authserver/models"
)

// TestResetLiftsBruteForceLock: a completed password reset clears the
// account's brute-force failures, as the README promises ("wait out the
// lock … or reset the password"): the owner, locked out by wrong
// guesses, logs in with the new password at once. A reset that is only
// asked for, or a confirmation that fails, lifts nothing.
func TestResetLiftsBruteForceLock(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", abThrottle)
		e.register(email(1))
		for range 3 {
			apiWantNoLogin(e, "a wrong guess", email(1), "wrong password")
		}
		abWantLimited(t, "the right password once locked", apiLogin(e, email(1), password))
		e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
		abWantLimited(t, "locked after the reset was asked for", apiLogin(e, email(1), password))
		apiWantErr(t, "a confirmation with a bad token", e.send(req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body: map[string]string{"token": "not-a-token", "new_password": "a brand new password"}}), http.StatusBadRequest, "invalid_reset_token")
		abWantLimited(t, "locked after a failed confirmation", apiLogin(e, email(1), password))
		token := e.mailer.Last(email(1))
		if token == "" {
			t.Fatal("no reset token was mailed")
		}
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body: map[string]string{"token": token, "new_password": "a brand new password"}})
		apiWantLogin(e, "the new password right after the reset", email(1), "a brand new password")
		if n := e.count(&models.LoginThrottle{}, "1 = 1"); n != 0 {
			t.Fatalf("%d throttle rows after the reset and a login, want 0", n)
		}
	})
}
