package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/revocable/authserver/models/dbtest"
)

// TestAdminMFAReset: through the real binary, an account with a confirmed
// TOTP factor needs the second step to log in; authserver user mfa-reset
// removes the factor, ends every login (the running server rejects the
// token within cache.max_staleness) and records admin_mfa_reset; the next
// login needs the password alone.
func TestAdminMFAReset(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := newDeployment(t, driver, map[string]string{"AUTH_CACHE_MAX_STALENESS": "400ms"})
			srv := d.start(t)
			const ann = "ann@example.com"
			srv.Register(t, ann, testPassword)
			tok := tokensFrom(t, login(t, srv, ann, testPassword))

			var enr struct{ ID, Secret string }
			r := srv.Do(t, http.MethodPost, "/api/v1/me/mfa/totp", tok.Access, map[string]string{"password": testPassword})
			if r.Status != http.StatusCreated {
				t.Fatalf("enroll: %d %s", r.Status, r.Body)
			}
			r.JSON(t, &enr)
			code, err := totp.GenerateCodeCustom(enr.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatal(err)
			}
			aal2 := tokensFrom(t, srv.Do(t, http.MethodPost, "/api/v1/me/mfa/totp/"+enr.ID+"/confirm", tok.Access, map[string]string{"code": code}))
			if r := login(t, srv, ann, testPassword); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"mfa_required":true`) {
				t.Fatalf("login with a factor: %d %s, want mfa_required", r.Status, r.Body)
			}

			out := d.must(t, "", "user", "mfa-reset", ann)
			if out.out != "removed 1 second factor(s) of "+ann+"; every login ended\n" {
				t.Fatalf("output %q", out.out)
			}
			waitRejected(t, srv, aal2.Access, out.ended, 400*time.Millisecond)
			fresh := tokensFrom(t, login(t, srv, ann, testPassword))
			var evs struct{ Events []struct{ Action string } }
			srv.Do(t, http.MethodGet, "/api/v1/me/events", fresh.Access, nil).JSON(t, &evs)
			found := false
			for _, e := range evs.Events {
				found = found || e.Action == "admin_mfa_reset"
			}
			if !found {
				t.Fatalf("no admin_mfa_reset event in %+v", evs.Events)
			}
			d.mustFail(t, "no account has the email", "user", "mfa-reset", "nobody@example.com")
		})
	}
}
