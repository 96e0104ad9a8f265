package routes_test

// X-Auth-Mode (issue 20): where a login, refresh, password change or
// logout-others answer puts the refresh token. Cookie mode never puts it
// in the JSON; body mode never sets the cookie; a refresh that presented
// the cookie is answered in cookie mode whatever the header says.

import (
	"net/http"
	"testing"
	"time"

	"github.com/revocable/authserver/models"
)

// amWant fails unless r carries the refresh token only where mode says,
// and the clock fields a client needs: iat and expires_at of the server's
// clock, expires_in unchanged. It returns the refresh token, wherever it is.
func amWant(e *env, what string, r *resp, mode string) string {
	e.t.Helper()
	inBody, hasBody := r.Body["refresh_token"]
	c := r.cookie("refresh_token")
	switch mode {
	case "cookie":
		if hasBody {
			e.t.Fatalf("%s: cookie mode answered refresh_token %v in the JSON", what, inBody)
		}
		if c == nil || c.Value == "" || !c.HttpOnly {
			e.t.Fatalf("%s: cookie mode set no HttpOnly refresh cookie; Set-Cookie %q", what, r.Header.Values("Set-Cookie"))
		}
	case "body":
		if c != nil {
			e.t.Fatalf("%s: body mode set a cookie %q", what, c.String())
		}
		if s, _ := inBody.(string); s == "" {
			e.t.Fatalf("%s: body mode answered no refresh_token: %s", what, r.Raw)
		}
	case "legacy":
		if c == nil || r.str("refresh_token") != c.Value {
			e.t.Fatalf("%s: without X-Auth-Mode the answer keeps the cookie and the body alike: %s / %q", what, r.Raw, r.Header.Values("Set-Cookie"))
		}
	}
	iat, _ := r.Body["iat"].(float64)
	exp, _ := r.Body["expires_at"].(float64)
	in, _ := r.Body["expires_in"].(float64)
	now := e.clock.Now().Unix()
	if int64(iat) != now || int64(exp) != now+int64(in) || time.Duration(in)*time.Second != e.cfg.JWT.AccessTTL {
		e.t.Fatalf("%s: iat %v expires_at %v expires_in %v, want %d, %d+ttl, %s", what, iat, exp, in, now, now, e.cfg.JWT.AccessTTL)
	}
	if hasBody {
		return r.str("refresh_token")
	}
	return c.Value
}

func TestAuthModes(t *testing.T) {
	xhr := map[string]string{"X-Requested-With": "authserver-client"}
	with := func(h map[string]string, mode string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		if mode != "legacy" {
			out["X-Auth-Mode"] = mode
		}
		return out
	}
	jar := func(v string) []*http.Cookie { return []*http.Cookie{{Name: "refresh_token", Value: v}} }
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		for i := 1; i <= 5; i++ {
			e.register(email(i))
		}
		for i, mode := range []string{"cookie", "body", "legacy"} {
			t.Run(mode, func(t *testing.T) {
				e := rtForT(e, t)
				r := e.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/login", header: with(nil, mode),
					body: map[string]string{"email": email(i + 1), "password": password, "device_name": mode}})
				rt := amWant(e, "login", r, mode)
				access := r.str("access_token")
				if mode == "body" {
					r = e.do(http.StatusOK, req{method: "POST", path: rtPath, header: with(nil, mode), body: map[string]string{"refresh_token": rt}})
				} else {
					r = e.do(http.StatusOK, req{method: "POST", path: rtPath, header: with(xhr, mode), cookies: jar(rt)})
				}
				want := mode
				if mode == "legacy" {
					want = "cookie" // it presented the cookie
				}
				amWant(e, "refresh", r, want)
				access = r.str("access_token")
				// 200 with tokens where the strategy must end every login.
				if r = e.send(req{method: "POST", path: "/api/v1/auth/logout-others", token: access, header: with(nil, mode)}); r.Code == http.StatusOK {
					amWant(e, "logout-others", r, mode)
				} else if r.Code != http.StatusNoContent && r.Code != http.StatusNotImplemented {
					t.Fatalf("logout-others: %d %s", r.Code, r.Raw)
				}
			})
		}
		t.Run("password change", func(t *testing.T) {
			e := rtForT(e, t)
			for i, mode := range []string{"cookie", "body"} {
				s := e.login(email(4+i), "pw")
				r := e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: s.access, header: with(nil, mode),
					body: map[string]string{"current_password": password, "new_password": rtNewPassword}})
				amWant(e, "password change "+mode, r, mode)
			}
		})
		t.Run("a cookie refresh never answers the token in the body", func(t *testing.T) {
			e := rtForT(e, t)
			s := e.login(email(1), "browser")
			// body mode with only the cookie: refused, nothing spent.
			r := e.send(req{method: "POST", path: rtPath, header: with(xhr, "body"), cookies: jar(s.refresh)})
			if r.Code != http.StatusBadRequest || r.errCode() != "invalid_request" {
				t.Fatalf("body mode with the cookie only: %d %s, want 400 invalid_request", r.Code, r.Raw)
			}
			if n := rtFamily(e, s.loginID, "used_at IS NULL AND revoked_at IS NULL"); n != 1 {
				t.Fatalf("a refused refresh spent the token (%d live rows)", n)
			}
			r = e.do(http.StatusOK, req{method: "POST", path: rtPath, header: xhr, cookies: jar(s.refresh)})
			amWant(e, "header-less cookie refresh", r, "cookie")
		})
		t.Run("an unknown mode is refused before anything changes", func(t *testing.T) {
			e := rtForT(e, t)
			before := e.count(&models.RefreshToken{}, "1 = 1")
			for _, v := range []string{"both", "", "cookie,body"} {
				r := e.send(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"X-Auth-Mode": v},
					body: map[string]string{"email": email(1), "password": password}})
				if r.Code != http.StatusBadRequest || r.errCode() != "invalid_request" || r.cookie("refresh_token") != nil {
					t.Fatalf("X-Auth-Mode %q: %d %s, want 400 invalid_request and no cookie", v, r.Code, r.Raw)
				}
			}
			if after := e.count(&models.RefreshToken{}, "1 = 1"); after != before {
				t.Fatalf("refused logins wrote refresh tokens: %d -> %d", before, after)
			}
		})
	})
}
