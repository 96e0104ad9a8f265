package routes_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	mailpkg "github.com/revocable/authserver/mail"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// totpCode is the code of secret at t, as an authenticator app computes
// it. Tests compute it at the server's clock (e.clock).
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// nextStep moves the server's clock to the start of the next TOTP step,
// so that a code of the new step has never been used.
func (e *env) nextStep() {
	now := e.clock.Now()
	e.clock.Set(now.Truncate(30 * time.Second).Add(30*time.Second + time.Second))
}

// enrollTOTP starts an enrollment from the session's access token and
// returns the factor id and the secret.
func (e *env) enrollTOTP(access string) (id, secret string) {
	e.t.Helper()
	r := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/me/mfa/totp", token: access, body: map[string]string{"password": password}})
	id, secret = r.str("id"), r.str("secret")
	if id == "" || secret == "" || !strings.HasPrefix(r.str("otpauth_uri"), "otpauth://totp/") {
		e.t.Fatalf("enroll: %s", r.Raw)
	}
	return id, secret
}

// confirmTOTP confirms the factor and returns the new session and the
// recovery codes.
func (e *env) confirmTOTP(access, id, secret string) (session, []string) {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/me/mfa/totp/" + id + "/confirm", token: access, body: map[string]string{"code": totpCode(e.t, secret, e.clock.Now())}})
	raw, _ := r.Body["recovery_codes"].([]any)
	codes := make([]string, 0, len(raw))
	for _, c := range raw {
		s, _ := c.(string)
		codes = append(codes, s)
	}
	if len(codes) != 10 {
		e.t.Fatalf("confirm: %d recovery codes, want 10: %s", len(codes), r.Raw)
	}
	return e.sessionOf(r), codes
}

// mfaUser registers an account, logs in and enrolls and confirms TOTP:
// the aal2 session, the secret and the recovery codes.
func (e *env) mfaUser(mail string) (session, string, []string, string) {
	e.t.Helper()
	e.register(mail)
	s := e.login(mail, "laptop")
	id, secret := e.enrollTOTP(s.access)
	s2, codes := e.confirmTOTP(s.access, id, secret)
	return s2, secret, codes, id
}

// mfaLogin is the first step of a login of an account with a factor: the
// mfa_token.
func (e *env) mfaLogin(mail string) string {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": mail, "password": password}})
	if r.Body["mfa_required"] != true || r.str("access_token") != "" || r.str("refresh_token") != "" || r.cookie("refresh_token") != nil {
		e.t.Fatalf("login of an account with a factor: %s (want mfa_required and no tokens)", r.Raw)
	}
	if !strings.HasPrefix(r.str("mfa_token"), "mfa_") || r.Body["expires_in"] != float64(300) {
		e.t.Fatalf("login challenge: %s", r.Raw)
	}
	return r.str("mfa_token")
}

func (e *env) mfaVerify(token string, body map[string]string) *resp {
	e.t.Helper()
	b := map[string]string{"mfa_token": token}
	for k, v := range body {
		b[k] = v
	}
	return e.send(req{method: "POST", path: "/api/v1/auth/mfa/verify", body: b})
}

// assurance is what verify says of a token: aal, amr and X-Auth-AAL.
func (e *env) assurance(token string) (string, []string) {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/auth/verify", token: token})
	var amr []string
	raw, _ := r.Body["amr"].([]any)
	for _, m := range raw {
		s, _ := m.(string)
		amr = append(amr, s)
	}
	if h := r.Header.Get("X-Auth-AAL"); h != r.str("aal") {
		e.t.Fatalf("X-Auth-AAL %q, body aal %q", h, r.str("aal"))
	}
	return r.str("aal"), amr
}

func (e *env) wantAssurance(what, token, aal string, amr ...string) {
	e.t.Helper()
	gotAAL, gotAMR := e.assurance(token)
	if gotAAL != aal || !slices.Equal(gotAMR, amr) {
		e.t.Fatalf("%s: aal %q amr %v, want %q %v", what, gotAAL, gotAMR, aal, amr)
	}
}

// TestMFAFlow: under every strategy, on every database: enrolling and
// confirming TOTP makes the caller aal2 and ends the other logins as the
// strategy's logout-others does; a login then needs the second step,
// which gives aal2 tokens whose refreshes stay aal2.
func TestMFAFlow(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		mail := email(1)
		e.register(mail)
		b := e.login(mail, "phone")
		c := e.login(mail, "tablet")
		a := e.login(mail, "laptop") // single_device: the one live login
		e.wantAssurance("a password login", a.access, "aal1", "pwd")

		id, secret := e.enrollTOTP(a.access)
		if name != "single_device" {
			// Still unconfirmed: a login needs no second step.
			c = e.login(mail, "tablet")
		}
		a2, codes := e.confirmTOTP(a.access, id, secret)
		e.wantAssurance("after confirming", a2.access, "aal2", "pwd", "otp")
		for _, code := range codes {
			if len(strings.ReplaceAll(code, "-", "")) != 12 {
				t.Fatalf("recovery code %q: want 12 base32 characters (60 bits)", code)
			}
		}

		// The other logins end: their refresh tokens always, their
		// access tokens where the strategy can end them.
		caps := e.caps()
		for _, s := range []session{b, c} {
			r := e.send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": s.refresh}})
			if r.Code != http.StatusUnauthorized {
				t.Fatalf("refresh of another login after confirming: %d %s, want 401", r.Code, r.Raw)
			}
			want := http.StatusUnauthorized
			if !caps.LogoutOtherDevices {
				want = http.StatusOK // stateless: lives until it expires
			}
			e.wantVerify("another login's access token after confirming", s.access, want)
		}
		e.wantVerify("the confirming session", a2.access, http.StatusOK)

		// The secret is stored sealed.
		var f models.MFAFactor
		if err := e.db.Take(&f, "id = ?", id).Error; err != nil {
			t.Fatal(err)
		}
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(f.Sealed, raw) || strings.Contains(string(f.Sealed), secret) || f.ConfirmedAt == nil {
			t.Fatalf("factor row: the secret is stored in clear, or unconfirmed")
		}

		// The second step of a login.
		e.nextStep()
		tok := e.mfaLogin(mail)
		r := e.mfaVerify(tok, map[string]string{"code": totpCode(t, secret, e.clock.Now())})
		if r.Code != http.StatusOK {
			t.Fatalf("mfa verify: %d %s", r.Code, r.Raw)
		}
		s := e.sessionOf(r)
		e.wantAssurance("after the second step", s.access, "aal2", "pwd", "otp")

		// A refresh keeps the login's assurance.
		e.clock.Advance(time.Second)
		r = e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": s.refresh}})
		e.wantAssurance("after a refresh", r.str("access_token"), "aal2", "pwd", "otp")

		// A recovery code instead of a code.
		tok = e.mfaLogin(mail)
		r = e.mfaVerify(tok, map[string]string{"recovery_code": strings.ToLower(codes[0])})
		if r.Code != http.StatusOK {
			t.Fatalf("mfa verify with a recovery code: %d %s", r.Code, r.Raw)
		}
		e.wantAssurance("after a recovery code", r.str("access_token"), "aal2", "pwd", "recovery")
		// The owner is told, through the outbox, that a recovery code was
		// spent; a code alone sends nothing.
		for deadline := time.Now().Add(10 * time.Second); countMessages(e.mailer.Messages(), mailpkg.RecoveryCodeUsed, mail) != 1; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no recovery-code notice was sent (of %d messages)", len(e.mailer.Messages()))
			}
		}
	})
}

// TestMFARejects: every bad input of the second factor gets its
// documented answer, and nothing changes.
func TestMFARejects(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "session_table")
		mail := email(1)
		aal2, secret, codes, factorID := e.mfaUser(mail)
		e.nextStep()

		type check struct {
			name   string
			run    func(t *testing.T) *resp
			status int
			code   string
		}
		used := e.mfaLogin(mail)
		goodCode := totpCode(t, secret, e.clock.Now())
		if r := e.mfaVerify(used, map[string]string{"code": goodCode}); r.Code != http.StatusOK {
			t.Fatalf("first use of a code: %d %s", r.Code, r.Raw)
		}
		if r := e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": codes[1]}); r.Code != http.StatusOK {
			t.Fatalf("first use of a recovery code: %d %s", r.Code, r.Raw)
		}
		cases := []check{
			{"wrong code", func(t *testing.T) *resp {
				wrong := "000000"
				if wrong == goodCode {
					wrong = "111111"
				}
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": wrong})
			}, 401, "invalid_mfa_code"},
			{"replayed code", func(t *testing.T) *resp {
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": goodCode})
			}, 401, "invalid_mfa_code"},
			{"code of the step before the skew window", func(t *testing.T) *resp {
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": totpCode(t, secret, e.clock.Now().Add(-60*time.Second))})
			}, 401, "invalid_mfa_code"},
			{"code that is no code", func(t *testing.T) *resp {
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": "12345a"})
			}, 401, "invalid_mfa_code"},
			{"used recovery code", func(t *testing.T) *resp {
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": codes[1]})
			}, 401, "invalid_recovery_code"},
			{"reused mfa_token", func(t *testing.T) *resp {
				return e.mfaVerify(used, map[string]string{"code": totpCode(t, secret, e.clock.Now().Add(30*time.Second))})
			}, 401, "invalid_mfa_token"},
			{"unknown mfa_token", func(t *testing.T) *resp {
				return e.mfaVerify("mfa_"+strings.Repeat("A", 43), map[string]string{"code": "123456"})
			}, 401, "invalid_mfa_token"},
			{"expired mfa_token", func(t *testing.T) *resp {
				tok := e.mfaLogin(mail)
				e.clock.Advance(strategy.ChallengeTTL + time.Second)
				return e.mfaVerify(tok, map[string]string{"code": totpCode(t, secret, e.clock.Now())})
			}, 401, "invalid_mfa_token"},
			{"mfa_token ended by 5 wrong codes", func(t *testing.T) *resp {
				e.nextStep()
				tok := e.mfaLogin(mail)
				for i := range strategy.MaxChallengeAttempts {
					r := e.mfaVerify(tok, map[string]string{"recovery_code": "AAAA-AAAA-AAA" + string(rune('A'+i))})
					apiWantErr(t, "a wrong recovery code", r, 401, "invalid_recovery_code")
				}
				return e.mfaVerify(tok, map[string]string{"code": totpCode(t, secret, e.clock.Now())})
			}, 401, "invalid_mfa_token"},
			{"both code and recovery_code", func(t *testing.T) *resp {
				return e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": "123456", "recovery_code": codes[2]})
			}, 400, "invalid_request"},
			{"mfa_token as a bearer (verify)", func(t *testing.T) *resp {
				return e.send(req{method: "GET", path: "/api/v1/auth/verify", token: e.mfaLogin(mail)})
			}, 401, "token_invalid"},
			{"mfa_token as a bearer (me)", func(t *testing.T) *resp {
				return e.send(req{method: "GET", path: "/api/v1/me", token: e.mfaLogin(mail)})
			}, 401, "token_invalid"},
			{"aal2 demanded of an aal1 token", func(t *testing.T) *resp {
				s := e.login(email(3), "")
				return e.send(req{method: "GET", path: "/api/v1/auth/verify?aal=aal2", token: s.access})
			}, 403, "insufficient_aal"},
			{"removal from an aal1 session", func(t *testing.T) *resp {
				s := e.login(email(3), "")
				id, _ := e.enrollTOTP(s.access)
				return e.send(req{method: "DELETE", path: "/api/v1/me/mfa/totp/" + id, token: s.access, body: map[string]string{"password": password}})
			}, 403, "insufficient_aal"},
			{"recovery codes from an aal1 session", func(t *testing.T) *resp {
				s := e.login(email(3), "")
				return e.send(req{method: "POST", path: "/api/v1/me/mfa/recovery-codes", token: s.access})
			}, 403, "insufficient_aal"},
			{"second unconfirmed enrollment", func(t *testing.T) *resp {
				s := e.login(email(4), "")
				e.enrollTOTP(s.access)
				return e.send(req{method: "POST", path: "/api/v1/me/mfa/totp", token: s.access, body: map[string]string{"password": password}})
			}, 409, "mfa_enrollment_pending"},
			{"confirming someone else's factor", func(t *testing.T) *resp {
				s := e.login(email(3), "")
				return e.send(req{method: "POST", path: "/api/v1/me/mfa/totp/" + factorID + "/confirm", token: s.access, body: map[string]string{"code": totpCode(t, secret, e.clock.Now())}})
			}, 404, "not_found"},
			{"removing someone else's factor", func(t *testing.T) *resp {
				_, _, _, other := e.mfaUser(email(5))
				return e.send(req{method: "DELETE", path: "/api/v1/me/mfa/totp/" + other, token: aal2.access, body: map[string]string{"password": password}})
			}, 404, "not_found"},
			{"removal with a wrong code", func(t *testing.T) *resp {
				return e.send(req{method: "DELETE", path: "/api/v1/me/mfa/totp/" + factorID, token: aal2.access, body: map[string]string{"code": "000001"}})
			}, 401, "invalid_mfa_code"},
			{"confirming a confirmed factor", func(t *testing.T) *resp {
				return e.send(req{method: "POST", path: "/api/v1/me/mfa/totp/" + factorID + "/confirm", token: aal2.access, body: map[string]string{"code": "000001"}})
			}, 409, "mfa_already_confirmed"},
			{"confirming an expired enrollment", func(t *testing.T) *resp {
				s := e.login(email(6), "")
				id, sec := e.enrollTOTP(s.access)
				e.clock.Advance(strategy.EnrollTTL + time.Second)
				return e.send(req{method: "POST", path: "/api/v1/me/mfa/totp/" + id + "/confirm", token: s.access, body: map[string]string{"code": totpCode(t, sec, e.clock.Now())}})
			}, 404, "not_found"},
		}
		// Cases that log in or register accounts of their own: the
		// count of live refresh tokens is not theirs to keep.
		ownState := map[string]bool{
			"removing someone else's factor": true, "removal from an aal1 session": true,
			"aal2 demanded of an aal1 token": true, "recovery codes from an aal1 session": true,
			"second unconfirmed enrollment": true, "confirming someone else's factor": true,
			"confirming an expired enrollment": true,
		}
		e.register(email(3))
		e.register(email(4))
		e.register(email(6))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var beforeRefresh, beforeConfirmed int64
				beforeRefresh = e.count(&models.RefreshToken{}, "revoked_at IS NULL")
				beforeConfirmed = e.count(&models.MFAFactor{}, "confirmed_at IS NOT NULL")
				var steps []int64
				e.db.Model(&models.MFAFactor{}).Where("id = ?", factorID).Pluck("last_step", &steps)
				r := c.run(t)
				apiWantErr(t, c.name, r, c.status, c.code)
				// Nothing changed: no login started or ended, no factor
				// confirmed or removed, no code step spent.
				if !ownState[c.name] {
					if got := e.count(&models.RefreshToken{}, "revoked_at IS NULL"); got != beforeRefresh {
						t.Fatalf("%s: live refresh tokens %d, before %d", c.name, got, beforeRefresh)
					}
				}
				if c.name != "removing someone else's factor" {
					// (that case confirms a factor of another account first)
					if got := e.count(&models.MFAFactor{}, "confirmed_at IS NOT NULL"); got != beforeConfirmed {
						t.Fatalf("%s: confirmed factors %d, before %d", c.name, got, beforeConfirmed)
					}
				}
				var after []int64
				e.db.Model(&models.MFAFactor{}).Where("id = ?", factorID).Pluck("last_step", &after)
				if !slices.Equal(steps, after) {
					t.Fatalf("%s: the factor's last step moved from %v to %v", c.name, steps, after)
				}
			})
		}
	})
}

// TestMFARemoveAndRecoveryCodes: an aal2 session removes its factor with a
// current code (other logins end, logins stop asking for a code); a new
// set of recovery codes kills the old one.
func TestMFARemoveAndRecoveryCodes(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "multi_device")
		mail := email(1)
		s, secret, codes, id := e.mfaUser(mail)

		r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/me/mfa/recovery-codes", token: s.access})
		fresh, _ := r.Body["recovery_codes"].([]any)
		if len(fresh) != 10 {
			t.Fatalf("new recovery codes: %s", r.Raw)
		}
		apiWantErr(t, "an old recovery code", e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": codes[0]}), 401, "invalid_recovery_code")
		if r := e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": fresh[0].(string)}); r.Code != http.StatusOK {
			t.Fatalf("a new recovery code: %d %s", r.Code, r.Raw)
		}
		other := e.sessionOf(e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": fresh[1].(string)}))

		list := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/me/mfa", token: s.access})
		if strings.Contains(string(list.Raw), secret) || list.Body["recovery_codes_remaining"] != float64(8) {
			t.Fatalf("factor list: %s", list.Raw)
		}

		e.nextStep()
		e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me/mfa/totp/" + id, token: s.access, body: map[string]string{"code": totpCode(t, secret, e.clock.Now())}})
		e.wantVerify("another login after the removal", other.access, http.StatusUnauthorized)
		e.wantVerify("the removing session", s.access, http.StatusOK)
		r = e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": mail, "password": password}})
		if r.str("access_token") == "" {
			t.Fatalf("login after the removal: %s, want tokens", r.Raw)
		}
		if n := e.count(&models.MFARecoveryCode{}, "1 = 1"); n != 0 {
			t.Fatalf("%d recovery codes left after the last factor went", n)
		}
	})
}

// TestMFAThrottle: wrong codes count in the account's brute-force
// throttle like wrong passwords: after max_failures the account is locked,
// even for the right code.
func TestMFAThrottle(t *testing.T) {
	e := newEnv(t, "sqlite", "password_key", abThrottle)
	mail := email(1)
	_, secret, _, _ := e.mfaUser(mail)
	e.nextStep()
	tok := e.mfaLogin(mail)
	for range 3 {
		apiWantErr(t, "a wrong code", e.mfaVerify(tok, map[string]string{"code": "000000"}), 401, "invalid_mfa_code")
	}
	r := e.mfaVerify(tok, map[string]string{"code": totpCode(t, secret, e.clock.Now())})
	apiWantErr(t, "the right code on a locked account", r, 429, "rate_limited")
}

// TestMFAConfirmDatabaseDown: the database failing during a confirm gets
// 503, and the factor stays unconfirmed; it can be confirmed afterwards.
func TestMFAConfirmDatabaseDown(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "token_version")
		e.register(email(1))
		s := e.login(email(1), "")
		id, secret := e.enrollTOTP(s.access)
		var down atomic.Bool
		fail := func(tx *gorm.DB) {
			if down.Load() {
				_ = tx.AddError(errors.New("test: the database is down"))
			}
		}
		cb := e.tokens.DB().Callback()
		for _, err := range []error{
			cb.Query().Before("gorm:query").Register("test:down_query", fail),
			cb.Update().Before("gorm:update").Register("test:down_update", fail),
			cb.Create().Before("gorm:create").Register("test:down_create", fail),
			cb.Delete().Before("gorm:delete").Register("test:down_delete", fail),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		down.Store(true)
		r := e.send(req{method: "POST", path: "/api/v1/me/mfa/totp/" + id + "/confirm", token: s.access, body: map[string]string{"code": totpCode(t, secret, e.clock.Now())}})
		down.Store(false)
		apiWantErr(t, "confirm with the database down", r, http.StatusServiceUnavailable, "service_unavailable")
		if n := e.count(&models.MFAFactor{}, "id = ? AND confirmed_at IS NULL AND last_step = 0", id); n != 1 {
			t.Fatalf("the factor changed although the confirm failed")
		}
		if n := e.count(&models.MFARecoveryCode{}, "1 = 1"); n != 0 {
			t.Fatalf("%d recovery codes stored by a failed confirm", n)
		}
		e.confirmTOTP(s.access, id, secret)
	})
}

// TestMFAConcurrent: concurrent confirms of one factor, one succeeds;
// concurrent second steps with one code, one succeeds (the
// compare-and-set of the last step). Meant for MySQL, run on every
// database.
func TestMFAConcurrent(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "session_table")
		e.register(email(1))
		s := e.login(email(1), "")
		id, secret := e.enrollTOTP(s.access)
		code := totpCode(t, secret, e.clock.Now())
		const n = 8
		statuses := make([]int, n)
		together(n, func(i int) {
			statuses[i] = e.send(req{method: "POST", path: "/api/v1/me/mfa/totp/" + id + "/confirm", token: s.access, body: map[string]string{"code": code}}).Code
		})
		if ok, lost := countStatus(statuses, http.StatusOK), countStatus(statuses, http.StatusConflict); ok != 1 || lost != n-1 {
			t.Fatalf("concurrent confirms: %v, want one 200 and 409 mfa_already_confirmed for the others", statuses)
		}

		e.nextStep()
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = e.mfaLogin(email(1))
		}
		code = totpCode(t, secret, e.clock.Now())
		together(n, func(i int) {
			statuses[i] = e.mfaVerify(tokens[i], map[string]string{"code": code}).Code
		})
		if ok, lost := countStatus(statuses, http.StatusOK), countStatus(statuses, http.StatusUnauthorized); ok != 1 || lost != n-1 {
			t.Fatalf("concurrent uses of one code: %v, want one 200 and 401 invalid_mfa_code for the others", statuses)
		}
	})
}

func countStatus(statuses []int, want int) int {
	n := 0
	for _, s := range statuses {
		if s == want {
			n++
		}
	}
	return n
}

// TestMFAEnrollKeepsOthers: with mfa.enroll_revokes_others off, the other
// logins live on.
func TestMFAEnrollKeepsOthers(t *testing.T) {
	e := newEnv(t, "sqlite", "session_table", func(c *config.Config) { c.MFA.EnrollRevokesOthers = false })
	e.register(email(1))
	a := e.login(email(1), "a")
	b := e.login(email(1), "b")
	id, secret := e.enrollTOTP(a.access)
	e.confirmTOTP(a.access, id, secret)
	e.wantVerify("another login, with enroll_revokes_others off", b.access, http.StatusOK)
	e.wantAssurance("another login", b.access, "aal1", "pwd")
}

// TestMFAAudit: enrolling, confirming, a failed code, a recovery code
// and a removal each leave their audit event, visible to the owner.
func TestMFAAudit(t *testing.T) {
	e := newEnv(t, "sqlite", "session_table")
	mail := email(1)
	s, secret, codes, id := e.mfaUser(mail)
	e.nextStep()
	apiWantErr(t, "a wrong code", e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": "000000"}), 401, "invalid_mfa_code")
	if r := e.mfaVerify(e.mfaLogin(mail), map[string]string{"recovery_code": codes[0]}); r.Code != http.StatusOK {
		t.Fatalf("recovery code: %d %s", r.Code, r.Raw)
	}
	e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me/mfa/totp/" + id, token: s.access, body: map[string]string{"code": totpCode(t, secret, e.clock.Now())}})
	got := map[string]string{}
	for _, ev := range e.events(s.access, "?limit=100") {
		got[ev.Action] = ev.Result
	}
	for action, result := range map[string]string{
		"mfa_enrolled": "success", "mfa_confirmed": "success", "mfa_challenged": "success", "mfa_failed": "failure",
		"mfa_recovery_code_used": "success", "mfa_removed": "success",
	} {
		if got[action] != result {
			t.Errorf("audit: %s is %q, want %q (events %v)", action, got[action], result, got)
		}
	}
}

// TestMFAMetrics: the second steps are counted by result, and a confirm
// counts as an mfa revocation.
func TestMFAMetrics(t *testing.T) {
	e := newEnv(t, "sqlite", "session_table", withMetrics)
	ts := metricsServer(t, e)
	before := scrapeMetrics(t, ts)
	mail := email(1)
	_, secret, _, _ := e.mfaUser(mail)
	e.nextStep()
	apiWantErr(t, "a wrong code", e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": "000000"}), 401, "invalid_mfa_code")
	apiWantErr(t, "an unknown mfa_token", e.mfaVerify("mfa_x", map[string]string{"code": "000000"}), 401, "invalid_mfa_token")
	if r := e.mfaVerify(e.mfaLogin(mail), map[string]string{"code": totpCode(t, secret, e.clock.Now())}); r.Code != http.StatusOK {
		t.Fatalf("mfa verify: %d %s", r.Code, r.Raw)
	}
	after := scrapeMetrics(t, ts)
	for result, want := range map[string]float64{"ok": 1, "invalid_code": 1, "invalid_token": 1, "rate_limited": 0, "error": 0} {
		if got := after.value("authserver_mfa_verifications_total", "result", result) - before.value("authserver_mfa_verifications_total", "result", result); got != want {
			t.Errorf("mfa %s: moved by %v, want %v", result, got, want)
		}
	}
	if got := after.value("authserver_revocations_total", "kind", "mfa") - before.value("authserver_revocations_total", "kind", "mfa"); got != 1 {
		t.Errorf("revocations of kind mfa: moved by %v, want 1 (the confirm)", got)
	}
}

// countMessages counts the messages of kind k to the address to.
func countMessages(ms []mailpkg.Message, k mailpkg.Kind, to string) int {
	n := 0
	for _, m := range ms {
		if m.Kind == k && m.To == to {
			n++
		}
	}
	return n
}
