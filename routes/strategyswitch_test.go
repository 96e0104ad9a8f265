package routes_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/strategy"
)

// restartAs is e's database served by a new server (authserver.New) of the
// named strategy, as after a restart with another strategy setting.
func restartAs(e *env, name string) *env {
	e.t.Helper()
	cfg := *e.cfg
	cfg.Strategy = name
	srv := startServer(e.t, authserver.Options{Config: &cfg, DB: e.db, Secret: testSecret, Mailer: e.mailer, Now: e.clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := *e
	c.cfg, c.name, c.srv, c.tokens, c.handler, c.verifier = &cfg, name, srv, srv.Tokens(), srv.Handler(), nil
	return &c
}

// TestStrategySwitchEndsTokens: after a restart under another strategy on
// the same database, no access token issued before verifies, in
// particular one the first strategy had revoked (session_table's logout
// deletes a row that password_key never reads: the token verified again).
// After a restart under the same strategy the live token still verifies
// and the revoked one stays revoked: the key of a strategy is stable.
func TestStrategySwitchEndsTokens(t *testing.T) {
	names := strategy.Names()
	type pair struct{ from, to string }
	pairs := []pair{{"session_table", "password_key"}}
	for i, n := range names {
		pairs = append(pairs, pair{n, names[(i+1)%len(names)]}, pair{n, n})
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, p := range pairs {
			if driver != "sqlite" && p != pairs[0] && p != (pair{"session_table", "session_table"}) {
				// The keys do not depend on the database: the anchor pair
				// and session_table's own restart suffice there.
				continue
			}
			t.Run(p.from+"->"+p.to, func(t *testing.T) {
				e := newEnv(t, driver, p.from)
				e.register(email(1))
				var revoked session
				canLogout := e.caps().LogoutThisDevice
				if canLogout {
					revoked = e.login(email(1), "phone")
					e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: revoked.access})
					e.wantVerify("the logged-out token before the restart", revoked.access, http.StatusUnauthorized)
				}
				// After the logout: single_device's next login ends the last.
				live := e.login(email(1), "laptop")
				e.wantVerify("the live token before the restart", live.access, http.StatusOK)
				after := restartAs(e, p.to)
				want := http.StatusUnauthorized
				if p.from == p.to {
					want = http.StatusOK
				}
				after.wantVerify("the live token after the restart", live.access, want)
				if canLogout {
					after.wantVerify("the logged-out token after the restart", revoked.access, http.StatusUnauthorized)
				}
				// Users log in again, and their new tokens verify.
				after.wantVerify("a token issued after the restart", after.login(email(1), "laptop").access, http.StatusOK)
			})
		}
	})
}
