package routes_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
)

// drainMail delivers the outbox to the env's mailbox.
func (e *env) drainMail() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.WaitResets(ctx); err != nil {
		e.t.Fatalf("drain mail: %v", err)
	}
}

func (e *env) meVerified(token string) bool {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/me", token: token})
	u, _ := r.Body["user"].(map[string]any)
	v, ok := u["email_verified"].(bool)
	if !ok {
		e.t.Fatalf("GET /me has no email_verified: %s", r.Raw)
	}
	return v
}

// TestVerifyEmail: a registration mails a verification token; with
// accounts.require_verified_email the right password of an unverified
// account gets 403 email_not_verified and a wrong one still 401; the
// token verifies once (then 400), GET /me shows it; the resend answers
// one 202 for every address and mails within the cooldown only once.
func TestVerifyEmail(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) { c.Accounts.RequireVerifiedEmail = true })
		const addr = "verify@example.com"
		e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": addr, "password": password}})
		e.drainMail()
		token := e.mailer.LastOf(mail.VerifyEmail, addr)
		if token == "" {
			t.Fatal("registration mailed no verification token")
		}
		r := e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": addr, "password": password}})
		apiWantErr(t, "login unverified", r, http.StatusForbidden, "email_not_verified")
		r = e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": addr, "password": "wrong password!"}})
		apiWantErr(t, "wrong password, unverified", r, http.StatusUnauthorized, "invalid_credentials")

		resend := func(a string) *resp {
			r := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/verify-email/resend", body: map[string]string{"email": a}})
			e.drainMail()
			return r
		}
		first := resend(addr) // within the cooldown: no new token
		if got := e.mailer.LastOf(mail.VerifyEmail, addr); got != token {
			t.Fatal("a resend within accounts.verify_cooldown mailed a new token")
		}
		if unknown := resend("nobody@example.com"); string(unknown.Raw) != string(first.Raw) {
			t.Fatalf("resend answers differ: %s vs %s", first.Raw, unknown.Raw)
		}
		if e.mailer.LastOf(mail.VerifyEmail, "nobody@example.com") != "" {
			t.Fatal("a verification went to an address without an account")
		}
		e.clock.Advance(2 * time.Minute)
		resend(addr)
		fresh := e.mailer.LastOf(mail.VerifyEmail, addr)
		if fresh == token || fresh == "" {
			t.Fatal("a resend after the cooldown mailed no new token")
		}

		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]string{"token": token}})
		r = e.send(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]string{"token": token}})
		apiWantErr(t, "verification token used twice", r, http.StatusBadRequest, "invalid_verification_token")
		r = e.send(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]string{"token": "no-such-token"}})
		apiWantErr(t, "unknown verification token", r, http.StatusBadRequest, "invalid_verification_token")
		s := e.login(addr, "laptop")
		if !e.meVerified(s.access) {
			t.Fatal("GET /me: email_verified false after verification")
		}
		// Verified: resends mail nothing more.
		resend(addr)
		if got := e.mailer.LastOf(mail.VerifyEmail, addr); got != fresh {
			t.Fatal("a resend for a verified account mailed a token")
		}
	})
}

// TestEmailChange: PUT /me/email answers one 202 whether the new address
// is free or taken (email_change_confirm or email_taken to it, the notice
// to the old one); tokens of one kind do not confirm the other; confirming
// moves the account, verifies it, ends its sessions, and works once; an
// address taken in the meantime gets 409 email_taken.
func TestEmailChange(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		const a, b, c = "change-a@example.com", "change-b@example.com", "change-c@example.com"
		e.register(a)
		e.register(b)
		e.drainMail()
		verifyA := e.mailer.LastOf(mail.VerifyEmail, a)
		s1, s2 := e.login(a, "one"), e.login(a, "two")
		change := func(to, pw string) *resp {
			r := e.send(req{method: "PUT", path: "/api/v1/me/email", token: s1.access, body: map[string]string{"new_email": to, "password": pw}})
			e.drainMail()
			return r
		}
		r := change(c, "wrong password!")
		apiWantErr(t, "wrong password", r, http.StatusUnauthorized, "invalid_credentials")
		taken := change(b, password)
		free := change(c, password)
		if taken.Code != http.StatusAccepted || string(taken.Raw) != string(free.Raw) {
			t.Fatalf("taken %d %s, free %d %s: want one 202", taken.Code, taken.Raw, free.Code, free.Raw)
		}
		kinds := map[mail.Kind]map[string]int{}
		for _, m := range e.mailer.Messages() {
			if kinds[m.Kind] == nil {
				kinds[m.Kind] = map[string]int{}
			}
			kinds[m.Kind][m.To]++
		}
		if kinds[mail.EmailTaken][b] != 1 || kinds[mail.EmailChangeConfirm][c] != 1 || kinds[mail.EmailChangeNotice][a] != 2 || kinds[mail.EmailChangeConfirm][b] != 0 {
			t.Fatalf("mails: %v", kinds)
		}
		token := e.mailer.LastOf(mail.EmailChangeConfirm, c)
		r = e.send(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]string{"token": token}})
		apiWantErr(t, "email-change token used to verify", r, http.StatusBadRequest, "invalid_verification_token")
		r = e.send(req{method: "POST", path: "/api/v1/auth/email-change/confirm", body: map[string]string{"token": verifyA}})
		apiWantErr(t, "verification token used to change", r, http.StatusBadRequest, "invalid_verification_token")

		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/email-change/confirm", body: map[string]string{"token": token}})
		for _, s := range []session{s1, s2} {
			e.wantVerify("session from before the email change", s.access, http.StatusUnauthorized)
		}
		r = e.send(req{method: "POST", path: "/api/v1/auth/email-change/confirm", body: map[string]string{"token": token}})
		apiWantErr(t, "email-change token used twice", r, http.StatusBadRequest, "invalid_verification_token")
		r = e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": a, "password": password}})
		apiWantErr(t, "login with the old address", r, http.StatusUnauthorized, "invalid_credentials")
		s3 := e.login(c, "three")
		if !e.meVerified(s3.access) {
			t.Fatal("the confirmed new address is not verified")
		}

		// Taken in the meantime.
		const d = "change-d@example.com"
		s1 = s3
		change(d, password)
		tokenD := e.mailer.LastOf(mail.EmailChangeConfirm, d)
		e.register(d)
		r = e.send(req{method: "POST", path: "/api/v1/auth/email-change/confirm", body: map[string]string{"token": tokenD}})
		apiWantErr(t, "address taken before the confirmation", r, http.StatusConflict, "email_taken")
	})
}

// TestRegisterTakenPending: with accounts.require_verified_email a
// registration of a taken address answers the same 201 as a new one and
// mails the owner email_taken (no verification token, no account);
// without it the answer stays 409 email_taken.
func TestRegisterTakenPending(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", func(c *config.Config) { c.Accounts.RequireVerifiedEmail = true })
		reg := func(addr string) *resp {
			r := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": addr, "password": password}})
			e.drainMail()
			return r
		}
		fresh := reg("pending-new@example.com")
		reg("pending-old@example.com")
		before := len(e.mailer.Messages())
		taken := reg("PENDING-old@example.com")
		if string(taken.Raw) != strings.Replace(string(fresh.Raw), "pending-new", "pending-old", 1) {
			t.Fatalf("answers differ beyond the address: %s vs %s", fresh.Raw, taken.Raw)
		}
		msgs := e.mailer.Messages()[before:]
		if len(msgs) != 1 || msgs[0].Kind != mail.EmailTaken || msgs[0].To != "pending-old@example.com" {
			t.Fatalf("mails after the taken registration: %+v", msgs)
		}
		if n := e.count(&models.User{}, "email = ?", "pending-old@example.com"); n != 1 {
			t.Fatalf("%d accounts for the address", n)
		}

		off := newEnv(t, driver, "password_key")
		off.register("plain@example.com")
		r := off.send(req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": "plain@example.com", "password": password}})
		apiWantErr(t, "taken without require_verified_email", r, http.StatusConflict, "email_taken")
	})
}
