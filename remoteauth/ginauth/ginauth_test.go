package ginauth_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/remoteauth"
	"github.com/revocable/authserver/remoteauth/ginauth"
)

const password = "correct horse battery"

// TestMiddleware runs a Gin app behind ginauth against the real auth
// server: a valid token reaches the handler with its caller, a bad or
// revoked one gets 401 and a stopped auth server 503, and neither reaches
// the handler or the handlers after it.
func TestMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			srv := binarytest.Start(t, binarytest.Options{Driver: driver, Env: map[string]string{"AUTH_STRATEGY": "single_device"}})
			uid := srv.Register(t, "ann@example.com", password)
			tok := srv.Login(t, "ann@example.com", password).Access
			srv.Register(t, "bob@example.com", password)
			revoked := srv.Login(t, "bob@example.com", password).Access
			srv.Do(t, http.MethodPost, "/api/v1/auth/logout", revoked, nil)

			v, err := remoteauth.New(remoteauth.Config{URL: srv.URL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			calls := 0
			r := gin.New()
			r.Use(ginauth.Middleware(v))
			r.GET("/notes", func(c *gin.Context) {
				calls++
				caller, ok := ginauth.Caller(c)
				if !ok {
					c.Status(http.StatusInternalServerError)
					return
				}
				c.JSON(http.StatusOK, gin.H{"user": strconv.FormatUint(caller.UserID, 10)})
			})

			get := func(token string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodGet, "/notes", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				return w
			}

			w := get(tok)
			var body struct{ User string }
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != http.StatusOK || body.User != uid || calls != 1 {
				t.Fatalf("valid token: %d %s after %d calls; want 200 for user %s", w.Code, w.Body, calls, uid)
			}
			for _, tc := range []struct{ name, token string }{{"missing", ""}, {"garbage", "garbage"}, {"revoked", revoked}} {
				if w := get(tc.token); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s: %d with WWW-Authenticate %q, want 401 with a challenge", tc.name, w.Code, w.Header().Get("WWW-Authenticate"))
				}
			}
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			if w := get(tok); w.Code != http.StatusServiceUnavailable {
				t.Errorf("auth server stopped: %d, want 503", w.Code)
			}
			if calls != 1 {
				t.Fatalf("the handler ran %d times, want once (for the valid token)", calls)
			}
		})
	}
}
