package routes_test

// The shared scenario suite: what each of the seven strategies does when a
// user logs out, logs out everywhere, changes or resets the password,
// deletes the account, or manages devices. The expected outcome of every
// scenario is written down per strategy in the table below, by hand, and is
// cross-checked against the capabilities the running server reports at
// GET /api/v1/strategy: a strategy that claims a capability must pass the
// scenario, one that does not must show the limitation.

import (
	"cmp"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// scOutcome is what a strategy does in one scenario.
type scOutcome string

const (
	// scRevoked: the tokens concerned are rejected at the very next
	// request (the test clock does not move).
	scRevoked scOutcome = "revoked at once"
	// scUntilExpiry: the limitation of strategies that keep no state
	// per login: the token keeps working until it expires.
	scUntilExpiry scOutcome = "valid until expiry"
	// scNotSupported: 501 not_supported, and nothing changes.
	scNotSupported scOutcome = "501 not_supported"
	// scKeepsCaller: logout-others answers 204 and the caller's login lives on.
	scKeepsCaller scOutcome = "204, caller keeps its login"
	// scReissues: logout-others can only end every login, so it answers 200
	// with fresh tokens for the caller.
	scReissues scOutcome = "200 with fresh tokens"
	// scCoexist: logins of one user live side by side.
	scCoexist scOutcome = "logins coexist"
	// scReplaced: single_device: a new login signs out the previous device.
	scReplaced scOutcome = "a new login replaces the previous one"
	// scListed: every live device of the caller is listed.
	scListed scOutcome = "devices listed"
	// scOneDevice: single_device: there is only ever the current device.
	scOneDevice scOutcome = "one device only"
	// scEnforced: devices.max is enforced.
	scEnforced scOutcome = "device limit enforced"
	// scUnlimited: devices.max has no effect; every login works.
	scUnlimited scOutcome = "devices.max has no effect"
	// scThrottled: last_seen_at moves at most once a minute.
	scThrottled scOutcome = "last_seen_at throttled to once a minute"
)

// scScenario is one row of the suite.
type scScenario struct {
	name string
	// claims reads, from the capabilities GET /api/v1/strategy reports,
	// whether the strategy says it can do what the scenario exercises; nil
	// when no capability covers the scenario.
	claims func(strategy.Capabilities) bool
	// capable are the outcomes that count as having that capability.
	capable []scOutcome
	// want is the expected outcome, per strategy name.
	want map[string]scOutcome
	opts []func(*config.Config)
	run  func(t *testing.T, e *env, want scOutcome)
}

// scPerStrategy builds a want map: def for every strategy, except those named
// in except.
func scPerStrategy(def scOutcome, except map[string]scOutcome) map[string]scOutcome {
	m := map[string]scOutcome{}
	for _, n := range []string{"stateless", "password_key", "single_device", "multi_device", "valid_date", "token_version", "session_table"} {
		m[n] = def
	}
	for n, o := range except {
		m[n] = o
	}
	return m
}

// scDeviceLimit is cfg.Devices.Max = 2 with the given policy.
func scDeviceLimit(policy string) func(*config.Config) {
	return func(c *config.Config) {
		c.Devices.Max = 2
		c.Devices.OnLimit = policy
	}
}

var scScenarios = []scScenario{
	{
		name:    "logout this device",
		claims:  func(c strategy.Capabilities) bool { return c.LogoutThisDevice },
		capable: []scOutcome{scRevoked},
		want: scPerStrategy(scUntilExpiry, map[string]scOutcome{
			"single_device": scRevoked, "multi_device": scRevoked, "session_table": scRevoked,
		}),
		run: scenarioLogout,
	},
	{
		name: "other devices stay signed in after one logs out",
		want: scPerStrategy(scCoexist, map[string]scOutcome{"single_device": scReplaced}),
		run:  scenarioOthersStay,
	},
	{
		name:    "logout all devices",
		claims:  func(c strategy.Capabilities) bool { return c.LogoutAllDevices },
		capable: []scOutcome{scRevoked},
		want:    scPerStrategy(scRevoked, map[string]scOutcome{"stateless": scNotSupported}),
		run:     scenarioLogoutAll,
	},
	{
		name:    "logout other devices",
		claims:  func(c strategy.Capabilities) bool { return c.LogoutOtherDevices },
		capable: []scOutcome{scKeepsCaller, scReissues},
		want: map[string]scOutcome{
			"stateless":     scNotSupported,
			"password_key":  scReissues,
			"single_device": scKeepsCaller,
			"multi_device":  scKeepsCaller,
			"valid_date":    scReissues,
			"token_version": scReissues,
			"session_table": scKeepsCaller,
		},
		run: scenarioLogoutOthers,
	},
	{
		name:    "password change",
		claims:  func(c strategy.Capabilities) bool { return c.RevokeOnPasswordChange },
		capable: []scOutcome{scRevoked},
		want:    scPerStrategy(scRevoked, map[string]scOutcome{"stateless": scUntilExpiry}),
		run:     scenarioPasswordChange,
	},
	{
		name:    "password reset confirm",
		claims:  func(c strategy.Capabilities) bool { return c.RevokeOnPasswordChange },
		capable: []scOutcome{scRevoked},
		want:    scPerStrategy(scRevoked, map[string]scOutcome{"stateless": scUntilExpiry}),
		run:     scenarioPasswordReset,
	},
	{
		name:    "account deletion",
		claims:  func(c strategy.Capabilities) bool { return c.RevokeOnAccountDeletion },
		capable: []scOutcome{scRevoked},
		want:    scPerStrategy(scRevoked, map[string]scOutcome{"stateless": scUntilExpiry}),
		run:     scenarioDeleteAccount,
	},
	{
		name: "new login and the previous device",
		want: scPerStrategy(scCoexist, map[string]scOutcome{"single_device": scReplaced}),
		run:  scenarioNewLogin,
	},
	{
		name:    "list devices",
		claims:  func(c strategy.Capabilities) bool { return c.ListDevices },
		capable: []scOutcome{scListed, scOneDevice},
		want: scPerStrategy(scNotSupported, map[string]scOutcome{
			"single_device": scOneDevice, "multi_device": scListed, "session_table": scListed,
		}),
		run: scenarioListDevices,
	},
	{
		name:    "revoke one device",
		claims:  func(c strategy.Capabilities) bool { return c.RevokeDevice },
		capable: []scOutcome{scRevoked, scOneDevice},
		want: scPerStrategy(scNotSupported, map[string]scOutcome{
			"single_device": scOneDevice, "multi_device": scRevoked, "session_table": scRevoked,
		}),
		run: scenarioRevokeDevice,
	},
	{
		// devices.max only binds the strategies that keep several devices;
		// single_device always has one, the others keep no device list.
		name:    "device limit reject",
		claims:  func(c strategy.Capabilities) bool { return c.DeviceLimit },
		capable: []scOutcome{scEnforced},
		want: scPerStrategy(scUnlimited, map[string]scOutcome{
			"single_device": scReplaced, "multi_device": scEnforced, "session_table": scEnforced,
		}),
		opts: []func(*config.Config){scDeviceLimit("reject")},
		run:  scenarioDeviceLimitReject,
	},
	{
		name:    "device limit evict_oldest",
		claims:  func(c strategy.Capabilities) bool { return c.DeviceLimit },
		capable: []scOutcome{scEnforced},
		want: scPerStrategy(scUnlimited, map[string]scOutcome{
			"single_device": scReplaced, "multi_device": scEnforced, "session_table": scEnforced,
		}),
		opts: []func(*config.Config){scDeviceLimit("evict_oldest")},
		run:  scenarioDeviceLimitEvict,
	},
	{
		// valid_date's same-second rule, held to by every strategy that can
		// log out everywhere: the test clock stands still, so the login
		// happens in the same microsecond as the revocation.
		name:    "logout-all then login in the same instant",
		claims:  func(c strategy.Capabilities) bool { return c.LogoutAllDevices },
		capable: []scOutcome{scRevoked},
		want:    scPerStrategy(scRevoked, map[string]scOutcome{"stateless": scNotSupported}),
		run:     scenarioSameInstant,
	},
	{
		name:    "last_seen_at throttle",
		claims:  func(c strategy.Capabilities) bool { return c.ListDevices },
		capable: []scOutcome{scThrottled},
		want: scPerStrategy(scNotSupported, map[string]scOutcome{
			"single_device": scThrottled, "multi_device": scThrottled, "session_table": scThrottled,
		}),
		run: scenarioLastSeen,
	},
}

func TestScenarioTableIsComplete(t *testing.T) {
	names := strategy.Names()
	sort.Strings(names)
	for _, sc := range scScenarios {
		if sc.claims != nil && len(sc.capable) == 0 {
			t.Errorf("%s: a scenario with a capability must say which outcomes have it", sc.name)
		}
		var got []string
		for n, o := range sc.want {
			got = append(got, n)
			if o == "" {
				t.Errorf("%s/%s: empty outcome", sc.name, n)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s: the table covers %v, want every strategy %v", sc.name, got, names)
		}
	}
}

// Each scenario runs twice: on one instance (every request to one server,
// through its verification cache), and with every verification sent to a
// second instance on the same database, with a cache of its own, that
// learns of changes from the invalidation outbox alone (it reads the
// outbox before each verification: the state of an instance once
// cache.max_staleness has passed).
func TestScenarios(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		for _, sc := range scScenarios {
			t.Run(sc.name, func(t *testing.T) {
				want, ok := sc.want[name]
				if !ok {
					t.Fatalf("the table has no outcome for %s", name)
				}
				for _, inst := range []string{"one instance", "verified on another instance"} {
					t.Run(inst, func(t *testing.T) {
						e := newEnv(t, driver, name, sc.opts...)
						if inst != "one instance" {
							e.addVerifier()
						}
						if sc.claims != nil {
							claimed := sc.claims(scReportedCaps(e))
							if capable := slices.Contains(sc.capable, want); claimed != capable {
								t.Fatalf("GET /api/v1/strategy reports the capability as %v, but the table expects %q", claimed, want)
							}
						}
						sc.run(t, e, want)
					})
				}
			})
		}
	})
}

// scNewPassword is what the password change and reset scenarios set.
const scNewPassword = "a whole new passphrase"

// scReportedCaps is what GET /api/v1/strategy reports.
func scReportedCaps(e *env) strategy.Capabilities {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/strategy"})
	var info struct {
		Name         string                `json:"name"`
		Capabilities strategy.Capabilities `json:"capabilities"`
	}
	if err := json.Unmarshal(r.Raw, &info); err != nil {
		e.t.Fatalf("GET /api/v1/strategy: %v", err)
	}
	if info.Name != e.name {
		e.t.Fatalf("GET /api/v1/strategy names %q, want %q", info.Name, e.name)
	}
	return info.Capabilities
}

// scLogin logs in with a password and a User-Agent of its own, as a real
// client does, so that the device list has something to show.
func scLogin(e *env, addr, pw, device string) session {
	e.t.Helper()
	r := e.do(http.StatusOK, req{
		method: "POST", path: "/api/v1/auth/login",
		body:   map[string]string{"email": addr, "password": pw, "device_name": device},
		header: map[string]string{"User-Agent": "ua/" + device},
	})
	return e.sessionOf(r)
}

func scVerify(e *env, token string) *resp {
	e.t.Helper()
	return e.send(req{method: "GET", path: "/api/v1/auth/verify", token: token})
}

func scRefresh(e *env, refresh string) *resp {
	e.t.Helper()
	return e.send(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": refresh}})
}

// scWantError fails unless r is the given error answer.
func scWantError(t *testing.T, what string, r *resp, status int, code string) {
	t.Helper()
	if r.Code != status || r.errCode() != code {
		t.Fatalf("%s: got %d %q, want %d %q; body %s", what, r.Code, r.errCode(), status, code, r.Raw)
	}
}

// scWantRejected fails unless the access token is refused as revoked or, for
// the strategies whose signing key changed or disappeared, as invalid.
func scWantRejected(t *testing.T, e *env, what, token string) {
	t.Helper()
	r := scVerify(e, token)
	if r.Code != http.StatusUnauthorized || (r.errCode() != "token_revoked" && r.errCode() != "token_invalid") {
		t.Fatalf("%s: verify answered %d %q, want 401 token_revoked or token_invalid", what, r.Code, r.errCode())
	}
}

// scWantValidUntilExpiry shows the limitation of a strategy without state:
// the token still works, and stops only when it expires. It moves the
// clock past the access token lifetime, so it comes last in a scenario.
func scWantValidUntilExpiry(t *testing.T, e *env, what string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		e.wantVerify(what+", before expiry", tok, http.StatusOK)
	}
	e.clock.Advance(e.cfg.JWT.AccessTTL + time.Second)
	for _, tok := range tokens {
		scWantError(t, what+", after expiry", scVerify(e, tok), http.StatusUnauthorized, "token_expired")
	}
}

// scDevice is one entry of GET /api/v1/sessions.
type scDevice struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	Current    bool      `json:"current"`
}

// scDeviceFields are the fields every entry of the device list has, exactly.
var scDeviceFields = []string{"created_at", "current", "device_name", "id", "ip", "last_seen_at", "user_agent"}

// scSessions is the caller's device list.
func scSessions(e *env, token string) []scDevice {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/sessions", token: token})
	raw, ok := r.Body["sessions"].([]any)
	if !ok {
		e.t.Fatalf("GET /sessions: no sessions list in %s", r.Raw)
	}
	for _, item := range raw {
		m, _ := item.(map[string]any)
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if !slices.Equal(keys, scDeviceFields) {
			e.t.Fatalf("GET /sessions: entry has fields %v, want %v", keys, scDeviceFields)
		}
	}
	var out struct {
		Sessions []scDevice `json:"sessions"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		e.t.Fatalf("GET /sessions: %v", err)
	}
	return out.Sessions
}

func scDeviceIDs(devs []scDevice) []string {
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

// scWantDeviceIDs fails unless the caller's device list holds exactly ids.
func scWantDeviceIDs(t *testing.T, e *env, what, token string, ids ...string) {
	t.Helper()
	want := slices.Clone(ids)
	sort.Strings(want)
	if got := scDeviceIDs(scSessions(e, token)); !slices.Equal(got, want) {
		t.Fatalf("%s: device ids %v, want %v", what, got, want)
	}
}

// scRowCounts are the rows a failed login must not change.
func scRowCounts(e *env) [3]int64 {
	e.t.Helper()
	return [3]int64{
		e.count(&models.RefreshToken{}, "revoked_at IS NULL"),
		e.count(&models.Session{}, "revoked_at IS NULL"),
		e.count(&models.User{}, "1 = 1"),
	}
}

func scUnknownOutcome(t *testing.T, want scOutcome) {
	t.Helper()
	t.Fatalf("the scenario does not handle the outcome %q", want)
}

func scenarioLogout(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: a.access})
	// Every strategy ends the login's refresh family.
	scWantError(t, "refresh after logout", scRefresh(e, a.refresh), http.StatusUnauthorized, "token_revoked")
	switch want {
	case scRevoked:
		scWantError(t, "access token after logout", scVerify(e, a.access), http.StatusUnauthorized, "token_revoked")
	case scUntilExpiry:
		// Logging out again still works: the token is still accepted.
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: a.access})
		scWantValidUntilExpiry(t, e, "access token after logout", a.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioOthersStay(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	switch want {
	case scCoexist:
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: a.access})
		e.wantVerify("other device after logout", b.access, http.StatusOK)
		r := scRefresh(e, b.refresh)
		if r.Code != http.StatusOK {
			t.Fatalf("refresh of the other device after logout: %d %s", r.Code, r.Raw)
		}
		e.wantVerify("other device's refreshed token", e.sessionOf(r).access, http.StatusOK)
	case scReplaced:
		// The second login already signed the first device out: it cannot
		// even log out, and its failed attempt changes nothing for b.
		scWantError(t, "first device after second login", scVerify(e, a.access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "logout by the replaced device", e.send(req{method: "POST", path: "/api/v1/auth/logout", token: a.access}),
			http.StatusUnauthorized, "token_revoked")
		e.wantVerify("current device", b.access, http.StatusOK)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioLogoutAll(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	r := e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: b.access})
	switch want {
	case scRevoked:
		if r.Code != http.StatusNoContent {
			t.Fatalf("logout-all: %d %s, want 204", r.Code, r.Raw)
		}
		scWantRejected(t, e, "first device after logout-all", a.access)
		scWantRejected(t, e, "caller after logout-all", b.access)
		scWantError(t, "refresh after logout-all", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
	case scNotSupported:
		scWantError(t, "logout-all", r, http.StatusNotImplemented, "not_supported")
		if n := e.count(&models.RefreshToken{}, "revoked_at IS NOT NULL"); n != 0 {
			t.Fatalf("a refused logout-all revoked %d refresh tokens", n)
		}
		scWantValidUntilExpiry(t, e, "tokens after a refused logout-all", a.access, b.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioLogoutOthers(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	r := e.send(req{method: "POST", path: "/api/v1/auth/logout-others", token: b.access})
	switch want {
	case scKeepsCaller:
		if r.Code != http.StatusNoContent || len(r.Raw) != 0 {
			t.Fatalf("logout-others: %d %s, want 204 without body", r.Code, r.Raw)
		}
		e.wantVerify("caller after logout-others", b.access, http.StatusOK)
		scWantError(t, "other device after logout-others", scVerify(e, a.access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "other device's refresh", scRefresh(e, a.refresh), http.StatusUnauthorized, "token_revoked")
		if rr := scRefresh(e, b.refresh); rr.Code != http.StatusOK {
			t.Fatalf("caller's refresh after logout-others: %d %s", rr.Code, rr.Raw)
		}
	case scReissues:
		if r.Code != http.StatusOK {
			t.Fatalf("logout-others: %d %s, want 200", r.Code, r.Raw)
		}
		fresh := e.sessionOf(r)
		if fresh.loginID == b.loginID {
			t.Fatalf("logout-others reissued the caller's old login id")
		}
		scWantRejected(t, e, "caller's old token", b.access)
		scWantRejected(t, e, "other device", a.access)
		e.wantVerify("fresh token", fresh.access, http.StatusOK)
		scWantError(t, "other device's refresh", scRefresh(e, a.refresh), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "caller's old refresh", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
		if rr := scRefresh(e, fresh.refresh); rr.Code != http.StatusOK {
			t.Fatalf("fresh refresh token: %d %s", rr.Code, rr.Raw)
		}
	case scNotSupported:
		scWantError(t, "logout-others", r, http.StatusNotImplemented, "not_supported")
		if n := e.count(&models.RefreshToken{}, "revoked_at IS NOT NULL"); n != 0 {
			t.Fatalf("a refused logout-others revoked %d refresh tokens", n)
		}
		scWantValidUntilExpiry(t, e, "tokens after a refused logout-others", a.access, b.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioPasswordChange(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	r := e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: b.access,
		body: map[string]string{"current_password": password, "new_password": scNewPassword}})
	fresh := e.sessionOf(r)
	e.wantVerify("token from the password change", fresh.access, http.StatusOK)
	// Refresh families end on every strategy.
	scWantError(t, "old refresh token", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
	scWantError(t, "login with the old password",
		e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}}),
		http.StatusUnauthorized, "invalid_credentials")
	switch want {
	case scRevoked:
		scWantRejected(t, e, "other device after password change", a.access)
		scWantRejected(t, e, "caller's old token after password change", b.access)
		e.wantVerify("token from the password change", fresh.access, http.StatusOK)
		n := scLogin(e, email(1), scNewPassword, "tablet")
		e.wantVerify("login with the new password", n.access, http.StatusOK)
	case scUntilExpiry:
		n := scLogin(e, email(1), scNewPassword, "tablet")
		e.wantVerify("login with the new password", n.access, http.StatusOK)
		scWantValidUntilExpiry(t, e, "old tokens after password change", a.access, b.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioPasswordReset(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": email(1)}})
	token := e.mailer.last(email(1))
	if token == "" {
		t.Fatal("no reset token was sent")
	}
	e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
		body: map[string]string{"token": token, "new_password": scNewPassword}})
	scWantError(t, "refresh after reset", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
	n := scLogin(e, email(1), scNewPassword, "tablet")
	e.wantVerify("login with the new password", n.access, http.StatusOK)
	switch want {
	case scRevoked:
		scWantRejected(t, e, "first device after reset", a.access)
		scWantRejected(t, e, "second device after reset", b.access)
	case scUntilExpiry:
		scWantValidUntilExpiry(t, e, "tokens after reset", a.access, b.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioDeleteAccount(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/me", token: b.access, body: map[string]string{"password": password}})
	if c := scRowCounts(e); c != [3]int64{} {
		t.Fatalf("after deletion: live refresh tokens, sessions, users = %v, want none", c)
	}
	// Whatever the strategy, the account is gone for everything that reads it.
	scWantError(t, "GET /me after deletion", e.send(req{method: "GET", path: "/api/v1/me", token: b.access}),
		http.StatusUnauthorized, "token_invalid")
	scWantError(t, "refresh after deletion", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_invalid")
	scWantError(t, "login after deletion",
		e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password}}),
		http.StatusUnauthorized, "invalid_credentials")
	switch want {
	case scRevoked:
		scWantRejected(t, e, "first device after deletion", a.access)
		scWantRejected(t, e, "second device after deletion", b.access)
	case scUntilExpiry:
		// stateless does not look at the user: verify still says yes.
		scWantValidUntilExpiry(t, e, "tokens after deletion", a.access, b.access)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioNewLogin(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	e.wantVerify("new login", b.access, http.StatusOK)
	switch want {
	case scReplaced:
		scWantError(t, "old device after a new login", scVerify(e, a.access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "old device's refresh after a new login", scRefresh(e, a.refresh), http.StatusUnauthorized, "token_revoked")
	case scCoexist:
		e.wantVerify("old device after a new login", a.access, http.StatusOK)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioListDevices(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	e.register(email(2))
	t0 := e.clock.Now()
	a := scLogin(e, email(1), password, "laptop")
	e.clock.Advance(time.Second)
	t1 := e.clock.Now()
	b := scLogin(e, email(1), password, "phone")
	other := scLogin(e, email(2), password, "stranger")
	switch want {
	case scListed:
		wantList := func(caller string, current string) {
			t.Helper()
			got := scSessions(e, caller)
			want := []scDevice{
				{ID: a.loginID, DeviceName: "laptop", UserAgent: "ua/laptop", IP: "192.0.2.10", CreatedAt: t0, LastSeenAt: t0, Current: current == a.loginID},
				{ID: b.loginID, DeviceName: "phone", UserAgent: "ua/phone", IP: "192.0.2.10", CreatedAt: t1, LastSeenAt: t1, Current: current == b.loginID},
			}
			scWantDevices(t, got, want)
		}
		wantList(a.access, a.loginID)
		wantList(b.access, b.loginID)
		scWantDevices(t, scSessions(e, other.access), []scDevice{
			{ID: other.loginID, DeviceName: "stranger", UserAgent: "ua/stranger", IP: "192.0.2.10", CreatedAt: t1, LastSeenAt: t1, Current: true},
		})
	case scOneDevice:
		scWantError(t, "list by the replaced device", e.send(req{method: "GET", path: "/api/v1/sessions", token: a.access}),
			http.StatusUnauthorized, "token_revoked")
		scWantDevices(t, scSessions(e, b.access), []scDevice{
			{ID: b.loginID, DeviceName: "phone", UserAgent: "ua/phone", IP: "192.0.2.10", CreatedAt: t1, LastSeenAt: t1, Current: true},
		})
		scWantDeviceIDs(t, e, "other user's list", other.access, other.loginID)
	case scNotSupported:
		scWantError(t, "list devices", e.send(req{method: "GET", path: "/api/v1/sessions", token: a.access}),
			http.StatusNotImplemented, "not_supported")
	default:
		scUnknownOutcome(t, want)
	}
}

// scWantDevices compares device lists in id order, times with Equal.
func scWantDevices(t *testing.T, got, want []scDevice) {
	t.Helper()
	byID := func(x, y scDevice) int { return cmp.Compare(x.ID, y.ID) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) {
		t.Fatalf("device list has %d entries %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.CreatedAt.Equal(w.CreatedAt) || !g.LastSeenAt.Equal(w.LastSeenAt) {
			t.Fatalf("device %s: created_at %s, last_seen_at %s; want %s, %s", g.ID, g.CreatedAt, g.LastSeenAt, w.CreatedAt, w.LastSeenAt)
		}
		g.CreatedAt, g.LastSeenAt, w.CreatedAt, w.LastSeenAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("device entry %+v, want %+v", g, w)
		}
	}
}

func scenarioRevokeDevice(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	e.register(email(2))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	other := scLogin(e, email(2), password, "stranger")
	del := func(caller, id string) *resp {
		t.Helper()
		return e.send(req{method: "DELETE", path: "/api/v1/sessions/" + id, token: caller})
	}
	// Neither someone else's device nor an unknown id can be revoked, and
	// trying changes nothing.
	refused := func(caller string) {
		t.Helper()
		before := scRowCounts(e)
		scWantError(t, "revoke another user's device", del(caller, other.loginID), http.StatusNotFound, "not_found")
		scWantError(t, "revoke an unknown device", del(caller, "no-such-device"), http.StatusNotFound, "not_found")
		if after := scRowCounts(e); after != before {
			t.Fatalf("refused revocations changed the rows: %v -> %v", before, after)
		}
		e.wantVerify("other user's device after a refused revocation", other.access, http.StatusOK)
		e.wantVerify("caller after a refused revocation", caller, http.StatusOK)
	}
	switch want {
	case scRevoked:
		refused(a.access)
		e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/sessions/" + b.loginID, token: a.access})
		scWantError(t, "revoked device", scVerify(e, b.access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "revoked device's refresh", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
		e.wantVerify("caller after revoking another device", a.access, http.StatusOK)
		scWantDeviceIDs(t, e, "after revoking", a.access, a.loginID)
		scWantError(t, "revoke the same device again", del(a.access, b.loginID), http.StatusNotFound, "not_found")
		e.wantVerify("other user's device", other.access, http.StatusOK)
	case scOneDevice:
		// The second login replaced the first: its id is no live device.
		refused(b.access)
		scWantError(t, "revoke the replaced device", del(b.access, a.loginID), http.StatusNotFound, "not_found")
		e.wantVerify("caller", b.access, http.StatusOK)
		e.do(http.StatusNoContent, req{method: "DELETE", path: "/api/v1/sessions/" + b.loginID, token: b.access})
		scWantError(t, "revoked own device", scVerify(e, b.access), http.StatusUnauthorized, "token_revoked")
		e.wantVerify("other user's device", other.access, http.StatusOK)
	case scNotSupported:
		scWantError(t, "revoke a device", del(a.access, b.loginID), http.StatusNotImplemented, "not_supported")
		e.wantVerify("device after a refused revocation", b.access, http.StatusOK)
		e.wantVerify("caller after a refused revocation", a.access, http.StatusOK)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioDeviceLimitReject(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	b := scLogin(e, email(1), password, "phone")
	switch want {
	case scEnforced:
		list := scSessions(e, a.access)
		before := scRowCounts(e)
		r := e.send(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": email(1), "password": password, "device_name": "tablet"}})
		scWantError(t, "third login", r, http.StatusForbidden, "device_limit")
		if r.cookie("refresh_token") != nil {
			t.Fatalf("a refused login set a refresh cookie")
		}
		if after := scRowCounts(e); after != before {
			t.Fatalf("a refused login changed the rows: %v -> %v", before, after)
		}
		scWantDevices(t, scSessions(e, a.access), list)
		e.wantVerify("first device after a refused login", a.access, http.StatusOK)
		e.wantVerify("second device after a refused login", b.access, http.StatusOK)
	case scReplaced:
		c := scLogin(e, email(1), password, "tablet")
		e.wantVerify("third login", c.access, http.StatusOK)
		scWantRejected(t, e, "second device", b.access)
	case scUnlimited:
		c := scLogin(e, email(1), password, "tablet")
		for _, s := range []session{a, b, c} {
			e.wantVerify("every login beyond devices.max", s.access, http.StatusOK)
		}
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioDeviceLimitEvict(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	// a is the oldest login, b the least recently seen once a has been
	// used again: b must go, not a.
	a := scLogin(e, email(1), password, "laptop")
	e.clock.Advance(time.Second)
	b := scLogin(e, email(1), password, "phone")
	e.clock.Advance(2 * time.Minute)
	if want != scReplaced {
		e.wantVerify("first device, seen again", a.access, http.StatusOK)
	}
	c := scLogin(e, email(1), password, "tablet")
	e.wantVerify("third login", c.access, http.StatusOK)
	switch want {
	case scEnforced:
		scWantError(t, "least recently seen device", scVerify(e, b.access), http.StatusUnauthorized, "token_revoked")
		scWantError(t, "least recently seen device's refresh", scRefresh(e, b.refresh), http.StatusUnauthorized, "token_revoked")
		e.wantVerify("recently seen device", a.access, http.StatusOK)
		scWantDeviceIDs(t, e, "after eviction", c.access, a.loginID, c.loginID)
	case scReplaced:
		scWantRejected(t, e, "first device", a.access)
		scWantRejected(t, e, "second device", b.access)
	case scUnlimited:
		for _, s := range []session{a, b, c} {
			e.wantVerify("every login beyond devices.max", s.access, http.StatusOK)
		}
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioSameInstant(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	a := scLogin(e, email(1), password, "laptop")
	r := e.send(req{method: "POST", path: "/api/v1/auth/logout-all", token: a.access})
	switch want {
	case scRevoked:
		if r.Code != http.StatusNoContent {
			t.Fatalf("logout-all: %d %s", r.Code, r.Raw)
		}
		b := scLogin(e, email(1), password, "laptop")
		e.wantVerify("login in the same instant as logout-all", b.access, http.StatusOK)
		scWantRejected(t, e, "token from before logout-all", a.access)
	case scNotSupported:
		scWantError(t, "logout-all", r, http.StatusNotImplemented, "not_supported")
		b := scLogin(e, email(1), password, "laptop")
		e.wantVerify("login after a refused logout-all", b.access, http.StatusOK)
		e.wantVerify("token from before a refused logout-all", a.access, http.StatusOK)
	default:
		scUnknownOutcome(t, want)
	}
}

func scenarioLastSeen(t *testing.T, e *env, want scOutcome) {
	e.register(email(1))
	t0 := e.clock.Now()
	a := scLogin(e, email(1), password, "laptop")
	switch want {
	case scThrottled:
		lastSeen := func(what string, want time.Time) {
			t.Helper()
			devs := scSessions(e, a.access)
			if len(devs) != 1 || devs[0].ID != a.loginID {
				t.Fatalf("%s: devices %+v, want just %s", what, devs, a.loginID)
			}
			if !devs[0].LastSeenAt.Equal(want) || !devs[0].CreatedAt.Equal(t0) {
				t.Fatalf("%s: created_at %s last_seen_at %s, want %s %s", what, devs[0].CreatedAt, devs[0].LastSeenAt, t0, want)
			}
		}
		e.clock.Advance(30 * time.Second)
		e.wantVerify("within the minute", a.access, http.StatusOK)
		lastSeen("verified within a minute", t0)
		e.clock.Advance(31 * time.Second)
		t1 := e.clock.Now()
		e.wantVerify("after a minute", a.access, http.StatusOK)
		lastSeen("verified after more than a minute", t1)
		e.clock.Advance(30 * time.Second)
		e.wantVerify("within the next minute", a.access, http.StatusOK)
		lastSeen("verified within a minute of the last update", t1)
		// The device list itself is a request of the device: it shows it
		// as seen now, not as of the request before.
		e.clock.Advance(31 * time.Second)
		lastSeen("listed more than a minute after the last update", e.clock.Now())
	case scNotSupported:
		scWantError(t, "list devices", e.send(req{method: "GET", path: "/api/v1/sessions", token: a.access}),
			http.StatusNotImplemented, "not_supported")
	default:
		scUnknownOutcome(t, want)
	}
}
