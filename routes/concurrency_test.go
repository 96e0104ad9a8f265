package routes_test

// Safety under concurrency: concurrent requests of one user must neither
// lose an update (two logins, one device), break the device limit, nor
// bring back a login that a concurrent logout or logout-all ended. MySQL
// is where this matters (real parallel transactions and row locks); SQLite
// serializes transactions on its one connection and must pass too.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
)

// ccLogins is how many logins of one user race in each test: the
// developers' guide asks for at least 50, and on two cores more would only
// be slower.
const ccLogins = 50

// ccLoginReq is a login of email(1) from the named device.
func ccLoginReq(device string) req {
	return req{method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": email(1), "password": password, "device_name": device}}
}

// ccRaceLogins sends n logins of email(1) at once, released together, and
// returns the answers in order.
func ccRaceLogins(e *env, n int) []*resp {
	out := make([]*resp, n)
	together(n, func(i int) {
		out[i] = e.send(ccLoginReq(fmt.Sprintf("device-%d", i)))
	})
	return out
}

// ccSID reads the sid claim of an access token without verifying it: the
// tests need the login id of tokens that may already be rejected.
func ccSID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.SID == "" {
		t.Fatalf("JWT payload without sid: %s", b)
	}
	return c.SID
}

// ccValidTokens returns the access tokens of the 200 answers that verify.
func ccValidTokens(e *env, answers []*resp) []string {
	var out []string
	for _, r := range answers {
		if r.Code == http.StatusOK && e.verify(r.str("access_token")) == http.StatusOK {
			out = append(out, r.str("access_token"))
		}
	}
	return out
}

// TestConcurrentLoginsKeepEveryDevice is the lost-update case: every one
// of N concurrent logins must end up as a device of its own (single_device
// keeps exactly one).
func TestConcurrentLoginsKeepEveryDevice(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) {
		for _, tc := range []struct {
			name    string
			devices int
		}{
			{"multi_device", ccLogins},
			{"session_table", ccLogins},
			{"single_device", 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, driver, tc.name)
				e.register(email(1))
				answers := ccRaceLogins(e, ccLogins)
				sids := map[string]bool{}
				for i, r := range answers {
					if r.Code != http.StatusOK {
						t.Fatalf("login %d: %d %s", i, r.Code, r.Raw)
					}
					sids[ccSID(t, r.str("access_token"))] = true
				}
				if len(sids) != ccLogins {
					t.Fatalf("%d logins gave %d distinct login ids", ccLogins, len(sids))
				}
				valid := ccValidTokens(e, answers)
				if len(valid) != tc.devices {
					t.Fatalf("%d of %d tokens verify, want %d", len(valid), ccLogins, tc.devices)
				}
				var want []string
				for _, tok := range valid {
					want = append(want, ccSID(t, tok))
				}
				scWantDeviceIDs(t, e, "after concurrent logins", valid[0], want...)
				if n := e.count(&models.RefreshToken{}, "revoked_at IS NULL"); n != int64(tc.devices) {
					t.Fatalf("%d live refresh families, want %d", n, tc.devices)
				}
			})
		}
	})
}

// TestConcurrentLoginsDeviceLimit races N logins against devices.max = 5.
func TestConcurrentLoginsDeviceLimit(t *testing.T) {
	t.Parallel()
	const limit = 5
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"multi_device", "session_table"} {
			for _, policy := range []string{"reject", "evict_oldest"} {
				t.Run(name+"/"+policy, func(t *testing.T) {
					e := newEnv(t, driver, name, func(c *config.Config) {
						c.Devices.Max = limit
						c.Devices.OnLimit = policy
					})
					if !scReportedCaps(e).DeviceLimit {
						t.Fatalf("%s does not report device_limit", name)
					}
					e.register(email(1))
					answers := ccRaceLogins(e, ccLogins)
					ok, refused := 0, 0
					for i, r := range answers {
						switch {
						case r.Code == http.StatusOK:
							ok++
						case r.Code == http.StatusForbidden && r.errCode() == "device_limit" && policy == "reject":
							refused++
						default:
							t.Fatalf("login %d: %d %s", i, r.Code, r.Raw)
						}
					}
					wantOK := limit
					if policy == "evict_oldest" {
						wantOK = ccLogins
					}
					if ok != wantOK || ok+refused != ccLogins {
						t.Fatalf("%d logins succeeded and %d were refused, want %d and %d", ok, refused, wantOK, ccLogins-wantOK)
					}
					valid := ccValidTokens(e, answers)
					if len(valid) != limit {
						t.Fatalf("%d tokens verify, want %d", len(valid), limit)
					}
					var sids []string
					for _, tok := range valid {
						sids = append(sids, ccSID(t, tok))
					}
					scWantDeviceIDs(t, e, "after racing the limit", valid[0], sids...)
					if n := e.count(&models.RefreshToken{}, "revoked_at IS NULL"); n != limit {
						t.Fatalf("%d live refresh families, want %d", n, limit)
					}
					if name == "session_table" {
						if n := e.count(&models.Session{}, "revoked_at IS NULL"); n != limit {
							t.Fatalf("%d live sessions, want %d", n, limit)
						}
					}
				})
			}
		}
	})
}

// TestConcurrentLogoutAllAndLogins races logins with a logout-all. A login
// that had answered before the logout-all was sent must be rejected after
// it; a login sent after the logout-all answered must work (the test clock
// stands still, so valid_date meets its same-instant rule here); the logins
// in between may go either way. A second logout-all, once everything
// settled, must end every token.
func TestConcurrentLogoutAllAndLogins(t *testing.T) {
	t.Parallel()
	const (
		// early logins run freely; the logout-all is sent once a quarter of
		// them have answered, so that some tokens surely predate it and the
		// rest race it.
		early   = ccLogins * 4 / 5
		trigger = early / 4
	)
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		caller := e.login(email(1), "caller")
		if !scReportedCaps(e).LogoutAllDevices {
			scWantError(t, "logout-all", e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: caller.access}),
				http.StatusNotImplemented, "not_supported")
			return
		}

		// seq orders events: each login takes a number when it is sent and
		// when it is answered, the logout-all likewise.
		var seq atomic.Int64
		type login struct {
			sent, answered int64
			r              *resp
		}
		logins := make([]login, ccLogins)
		var logoutSent, logoutAnswered int64
		var logoutResp *resp
		var answered atomic.Int64
		triggered := make(chan struct{})
		loggedOut := make(chan struct{})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range logins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if i >= early {
					// The late logins race only the early ones still
					// running, not the logout-all.
					<-loggedOut
				}
				l := login{sent: seq.Add(1)}
				l.r = e.send(ccLoginReq(fmt.Sprintf("device-%d", i)))
				l.answered = seq.Add(1)
				logins[i] = l
				if i < early && answered.Add(1) == trigger {
					close(triggered)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(loggedOut)
			<-triggered
			logoutSent = seq.Add(1)
			logoutResp = e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: caller.access})
			logoutAnswered = seq.Add(1)
		}()
		close(start)
		wg.Wait()

		switch {
		case logoutResp.Code == http.StatusNoContent:
		case name == "single_device" && logoutResp.errCode() == "token_revoked":
			// A concurrent login replaced the caller's device before the
			// logout-all ran: single_device's own rule. The logout-all did
			// nothing, so there is no before and after to check.
			t.Logf("the caller was replaced before its logout-all ran")
			logoutSent, logoutAnswered = 0, int64(len(logins))*2+2
		default:
			t.Fatalf("logout-all: %d %s", logoutResp.Code, logoutResp.Raw)
		}
		scWantRejected(t, e, "caller after logout-all", caller.access)
		before, after, valid := 0, 0, 0
		for i, l := range logins {
			if l.r.Code != http.StatusOK {
				t.Fatalf("login %d: %d %s", i, l.r.Code, l.r.Raw)
			}
			tok := l.r.str("access_token")
			code := e.verify(tok)
			if code == http.StatusOK {
				valid++
			}
			switch {
			case l.answered < logoutSent:
				before++
				if code != http.StatusUnauthorized {
					t.Errorf("login %d answered before logout-all was sent, yet its token verifies %d", i, code)
				}
			case l.sent > logoutAnswered:
				after++
				// single_device keeps only the last login; checked below.
				if code != http.StatusOK && name != "single_device" {
					t.Errorf("login %d sent after logout-all answered, yet its token verifies %d", i, code)
				}
			}
		}
		if logoutResp.Code == http.StatusNoContent && (before < trigger || after != ccLogins-early) {
			t.Fatalf("%d logins predate the logout-all and %d follow it, want at least %d and %d", before, after, trigger, ccLogins-early)
		}
		if name == "single_device" && valid != 1 {
			t.Fatalf("single_device: %d tokens verify, want exactly one", valid)
		}
		t.Logf("%d logins before logout-all, %d after, %d raced it; %d tokens valid", before, after, ccLogins-before-after, valid)

		last := e.login(email(1), "last")
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout-all", token: last.access})
		scWantRejected(t, e, "last caller after the second logout-all", last.access)
		for i, l := range logins {
			scWantRejected(t, e, fmt.Sprintf("login %d after the second logout-all", i), l.r.str("access_token"))
		}
		if n := e.count(&models.RefreshToken{}, "revoked_at IS NULL"); n != 0 {
			t.Fatalf("%d refresh families survived logout-all", n)
		}
	})
}

// TestConcurrentLogoutDoesNotResurrect logs device A out while other
// devices of the same user log in: a login that read the device list before
// the logout and wrote it after must not bring A back.
func TestConcurrentLogoutDoesNotResurrect(t *testing.T) {
	const rounds, perRound = 5, ccLogins / 5
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range []string{"multi_device", "session_table"} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, driver, name)
				if !scReportedCaps(e).LogoutThisDevice {
					t.Fatalf("%s does not report logout_this_device", name)
				}
				e.register(email(1))
				var logins []string
				var gone []session
				for round := range rounds {
					a := e.login(email(1), fmt.Sprintf("a-%d", round))
					gone = append(gone, a)
					answers := make([]*resp, perRound)
					var logout *resp
					together(perRound+1, func(i int) {
						if i == perRound {
							logout = e.send(req{method: "POST", path: "/api/v1/auth/logout", token: a.access})
							return
						}
						answers[i] = e.send(ccLoginReq(fmt.Sprintf("b-%d-%d", round, i)))
					})
					if logout.Code != http.StatusNoContent {
						t.Fatalf("round %d: logout: %d %s", round, logout.Code, logout.Raw)
					}
					for i, r := range answers {
						if r.Code != http.StatusOK {
							t.Fatalf("round %d: login %d: %d %s", round, i, r.Code, r.Raw)
						}
						logins = append(logins, r.str("access_token"))
					}
					for _, a := range gone {
						scWantError(t, fmt.Sprintf("round %d: logged-out device", round), scVerify(e, a.access), http.StatusUnauthorized, "token_revoked")
					}
				}
				var sids []string
				for i, tok := range logins {
					e.wantVerify(fmt.Sprintf("login %d", i), tok, http.StatusOK)
					sids = append(sids, ccSID(t, tok))
				}
				scWantDeviceIDs(t, e, "after the races", logins[0], sids...)
				for _, a := range gone {
					if slices.Contains(sids, a.loginID) {
						t.Fatalf("logged-out device %s is listed", a.loginID)
					}
				}
			})
		}
	})
}
