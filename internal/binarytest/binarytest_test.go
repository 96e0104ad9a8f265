package binarytest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/revocable/authserver/internal/binarytest"
	"github.com/revocable/authserver/models/dbtest"
)

const password = "correct horse battery"

// TestStart runs the binary on every test database and checks what the
// helpers promise: the server answers on URL, the settings of Env apply and
// the test's own AUTH_* variables do not, the log is captured, and Stop
// shuts it down cleanly.
func TestStart(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			// Must not reach the server: Options.Env decides.
			t.Setenv("AUTH_STRATEGY", "stateless")
			srv := binarytest.Start(t, binarytest.Options{
				Driver: driver,
				Env:    map[string]string{"AUTH_STRATEGY": "single_device"},
			})
			var info struct {
				Name string `json:"name"`
			}
			r := srv.Do(t, http.MethodGet, "/api/v1/strategy", "", nil)
			r.JSON(t, &info)
			if info.Name != "single_device" {
				t.Fatalf("strategy %q, want single_device (from Options.Env)", info.Name)
			}

			uid := srv.Register(t, "ann@example.com", password)
			tok := srv.Login(t, "ann@example.com", password)
			v := srv.Do(t, http.MethodGet, "/api/v1/auth/verify", tok.Access, nil)
			if v.Status != http.StatusOK || v.Header.Get("X-Auth-User-Id") != uid {
				t.Fatalf("verify: %d, X-Auth-User-Id %q, want 200 and %q: %s", v.Status, v.Header.Get("X-Auth-User-Id"), uid, v.Body)
			}
			// The real server sends no body for HEAD, whatever the handler
			// writes.
			for _, token := range []string{tok.Access, "bad"} {
				h := srv.Do(t, http.MethodHead, "/api/v1/auth/verify", token, nil)
				if len(h.Body) != 0 {
					t.Errorf("HEAD verify: body %q, want none", h.Body)
				}
			}

			if !strings.Contains(srv.Log(), "authserver listening") {
				t.Errorf("log does not have the start-up line:\n%s", srv.Log())
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("Stop: %v\n%s", err, srv.Log())
			}
			if !strings.Contains(srv.Log(), "shutting down") {
				t.Errorf("log does not show a graceful shutdown:\n%s", srv.Log())
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		})
	}
}

// TestSharedDatabase starts two servers on one database, as two instances
// of one deployment: a token from one is accepted by the other, and a
// logout on one is seen by the other at once. (The verification cache is
// off here: with it, another instance learns of a logout through Redis or
// within cache.max_staleness, which is not what this test is about.)
func TestSharedDatabase(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			driver, dsn := dbtest.DSN(t, driver)
			env := map[string]string{"AUTH_DATABASE_DSN": dsn, "AUTH_STRATEGY": "session_table", "AUTH_CACHE_ENABLED": "false"}
			a := binarytest.Start(t, binarytest.Options{Driver: driver, Env: env})
			b := binarytest.Start(t, binarytest.Options{Driver: driver, Env: env})
			if a.URL == b.URL {
				t.Fatalf("both servers on %s", a.URL)
			}
			a.Register(t, "bob@example.com", password)
			tok := a.Login(t, "bob@example.com", password)
			if r := b.Do(t, http.MethodGet, "/api/v1/auth/verify", tok.Access, nil); r.Status != http.StatusOK {
				t.Fatalf("other instance: verify %d, want 200: %s", r.Status, r.Body)
			}
			if r := a.Do(t, http.MethodPost, "/api/v1/auth/logout", tok.Access, nil); r.Status != http.StatusNoContent {
				t.Fatalf("logout: %d: %s", r.Status, r.Body)
			}
			if r := b.Do(t, http.MethodGet, "/api/v1/auth/verify", tok.Access, nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("other instance after logout: verify %d, want 401: %s", r.Status, r.Body)
			}
		})
	}
}
