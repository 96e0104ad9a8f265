package ginauth_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/remoteauth"
	"github.com/revocable/authserver/remoteauth/ginauth"
)

// TestRequireAAL2: against the real auth server, a route behind
// RequireAAL2 refuses an aal1 token with 403 insufficient_aal and lets an
// aal2 one (after a confirmed TOTP factor) through, with the caller's aal
// and amr.
func TestRequireAAL2(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			srv := binarytest.Start(t, binarytest.Options{Driver: driver, Env: map[string]string{"AUTH_STRATEGY": "session_table"}})
			srv.Register(t, "ann@example.com", password)
			aal1 := srv.Login(t, "ann@example.com", password).Access
			srv.Register(t, "bob@example.com", password)
			bob := srv.Login(t, "bob@example.com", password).Access
			var enr struct{ ID, Secret string }
			srv.Do(t, http.MethodPost, "/api/v1/me/mfa/totp", bob, map[string]string{"password": password}).JSON(t, &enr)
			code, err := totp.GenerateCodeCustom(enr.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatal(err)
			}
			var conf struct {
				AccessToken string `json:"access_token"`
			}
			srv.Do(t, http.MethodPost, "/api/v1/me/mfa/totp/"+enr.ID+"/confirm", bob, map[string]string{"code": code}).JSON(t, &conf)
			if conf.AccessToken == "" {
				t.Fatal("confirm gave no access token")
			}

			v, err := remoteauth.New(remoteauth.Config{URL: srv.URL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			r := gin.New()
			r.GET("/payments", ginauth.Middleware(v), ginauth.RequireAAL2(), func(c *gin.Context) {
				caller, _ := ginauth.Caller(c)
				c.JSON(http.StatusOK, gin.H{"aal": caller.Claims.AAL, "amr": caller.Claims.AMR})
			})
			get := func(token string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodGet, "/payments", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				return w
			}
			w := get(aal1)
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != http.StatusForbidden || e.Error.Code != "insufficient_aal" {
				t.Fatalf("aal1 token: %d %s, want 403 insufficient_aal", w.Code, w.Body)
			}
			w = get(conf.AccessToken)
			if w.Code != http.StatusOK || w.Body.String() != `{"aal":"aal2","amr":["pwd","otp"]}` {
				t.Fatalf("aal2 token: %d %s", w.Code, w.Body)
			}
		})
	}
}
