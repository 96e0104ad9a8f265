package scenario

import (
	"net/http"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/strategy"
)

// perStrategy builds a Want map: def for every strategy, except those named
// in except.
func perStrategy(def Outcome, except map[string]Outcome) map[string]Outcome {
	m := map[string]Outcome{}
	for _, n := range strategy.Names() {
		m[n] = def
	}
	for n, o := range except {
		m[n] = o
	}
	return m
}

// deviceTracking are the strategies that keep a state per login.
func deviceTracking(o Outcome) map[string]Outcome {
	return map[string]Outcome{"single_device": o, "multi_device": o, "session_table": o}
}

// deviceLimit is devices.max = 2 with the given policy.
func deviceLimit(policy string) func(*config.Config) {
	return func(c *config.Config) {
		c.Devices.Max = 2
		c.Devices.OnLimit = policy
	}
}

// All returns the table, in the order of the rows of docs/strategies.md. Each call
// builds it afresh, so that a caller may keep and change its copy.
func All() []Case {
	return []Case{
		{
			ID: "logout_this_device", Title: "token rejected after logout on this device",
			Claim: "logout_this_device", Shows: []Outcome{Revoked},
			Want: perStrategy(UntilExpiry, deviceTracking(Revoked)),
			run:  logoutThisDevice,
		},
		{
			ID: "others_stay_after_logout", Title: "other devices stay signed in after that logout",
			Claim: "multiple_logins", Shows: []Outcome{Coexist}, UnclaimedMayShow: true,
			Want: perStrategy(Coexist, map[string]Outcome{"single_device": Replaced}),
			run:  othersStayAfterLogout,
		},
		{
			ID: "logout_others", Title: "logout-others keeps the caller and ends the others",
			Claim: "logout_other_devices", Shows: []Outcome{KeepsCaller, Reissues},
			Want: perStrategy(Reissues, map[string]Outcome{
				"stateless": NotSupported, "single_device": KeepsCaller, "multi_device": KeepsCaller, "session_table": KeepsCaller,
			}),
			run: logoutOthers,
		},
		{
			// mfa.enroll_revokes_others (default true): confirming a
			// second factor ends the other logins as logout-others does.
			// Under stateless only their refresh tokens end.
			ID: "mfa_enroll_ends_others", Title: "adding a second factor ends other sessions",
			Claim: "logout_other_devices", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": UntilExpiry}),
			run:  mfaEnrollEndsOthers,
		},
		{
			ID: "logout_all", Title: "all tokens rejected after logout-all",
			Claim: "logout_all_devices", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": NotSupported}),
			run:  logoutAll,
		},
		{
			ID: "no_refresh_after_logout_all", Title: "refresh impossible after logout-all",
			Claim: "logout_all_devices", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": NotSupported}),
			run:  noRefreshAfterLogoutAll,
		},
		{
			// valid_date's same-second rule, held to by every strategy that
			// can log out everywhere: the clock stands still, so the login
			// happens in the same microsecond as the revocation.
			ID: "login_same_instant_as_logout_all", Title: "a login in the same instant as logout-all works, the older token does not",
			Claim: "logout_all_devices", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": NotSupported}),
			run:  sameInstant,
		},
		{
			ID: "password_change", Title: "all tokens rejected after password change",
			Claim: "revoke_on_password_change", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": UntilExpiry}),
			run:  passwordChange,
		},
		{
			ID: "password_reset", Title: "all tokens rejected after password reset",
			Claim: "revoke_on_password_change", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": UntilExpiry}),
			run:  passwordReset,
		},
		{
			ID: "account_deletion", Title: "all tokens rejected after account deletion",
			Claim: "revoke_on_account_deletion", Shows: []Outcome{Revoked},
			Want: perStrategy(Revoked, map[string]Outcome{"stateless": UntilExpiry}),
			run:  accountDeletion,
		},
		{
			ID: "new_login_signs_out_others", Title: "a new login signs out other devices",
			Claim: "single_login", Shows: []Outcome{Replaced},
			Want: perStrategy(Coexist, map[string]Outcome{"single_device": Replaced}),
			run:  newLogin,
		},
		{
			ID: "list_devices", Title: "devices can be listed",
			Claim: "list_devices", Shows: []Outcome{Listed, OneDevice},
			Want: perStrategy(NotSupported, map[string]Outcome{
				"single_device": OneDevice, "multi_device": Listed, "session_table": Listed,
			}),
			run: listDevices,
		},
		{
			ID: "last_seen_throttled", Title: "a device's last use is shown, updated at most once a minute",
			Claim: "list_devices", Shows: []Outcome{Throttled},
			Want: perStrategy(NotSupported, deviceTracking(Throttled)),
			run:  lastSeen,
		},
		{
			ID: "revoke_device", Title: "one device can be revoked",
			Claim: "revoke_device", Shows: []Outcome{Revoked, OneDevice},
			Want: perStrategy(NotSupported, map[string]Outcome{
				"single_device": OneDevice, "multi_device": Revoked, "session_table": Revoked,
			}),
			run: revokeDevice,
		},
		{
			// devices.max only binds the strategies that keep several
			// devices; single_device always has one, the others keep no
			// device list.
			ID: "device_limit", Title: "device limit refuses a third login (devices.max=2, reject)",
			Claim: "device_limit", Shows: []Outcome{Enforced},
			Setting: "devices.max=2, devices.on_limit=reject", Configure: deviceLimit("reject"),
			Want: perStrategy(Unlimited, map[string]Outcome{
				"single_device": Replaced, "multi_device": Enforced, "session_table": Enforced,
			}),
			run: deviceLimitReject,
		},
		{
			ID: "device_limit_evict_oldest", Title: "device limit signs out the least recently seen device (devices.max=2, evict_oldest)",
			Claim: "device_limit", Shows: []Outcome{Enforced},
			Setting: "devices.max=2, devices.on_limit=evict_oldest", Configure: deviceLimit("evict_oldest"),
			Want: perStrategy(Unlimited, map[string]Outcome{
				"single_device": Replaced, "multi_device": Enforced, "session_table": Enforced,
			}),
			run: deviceLimitEvict,
		},
		{
			ID: "refresh_reuse_detected", Title: "refresh token reuse detected",
			Claim: "", Shows: []Outcome{ReuseDetected},
			Want: perStrategy(ReuseDetected, nil),
			run:  refreshReuse,
		},
		{
			// The default: several tabs of one browser share a login, and
			// a refresh in one must not sign the others out.
			ID: "refresh_supersedes_access_off", Title: "a refresh ends the access token it replaced (jwt.refresh_supersedes_access=false, the default)",
			Claim: "refresh_supersedes_access", Shows: []Outcome{Revoked},
			Want: perStrategy(UntilExpiry, nil),
			run:  refreshSupersedes,
		},
		{
			ID: "refresh_supersedes_access_on", Title: "a refresh ends the access token it replaced (jwt.refresh_supersedes_access=true)",
			Claim: "refresh_supersedes_access", Shows: []Outcome{Revoked},
			Setting:   "jwt.refresh_supersedes_access=true",
			Configure: func(c *config.Config) { c.JWT.RefreshSupersedesAccess = true },
			Want:      perStrategy(UntilExpiry, deviceTracking(Revoked)),
			run:       refreshSupersedes,
		},
	}
}

func logoutThisDevice(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	p.do(http.StatusNoContent, logoutReq(a.access))
	// Every strategy ends the login's refresh family.
	p.wantError("refresh after logout", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
	switch r := p.verify(a.access); r.Status {
	case http.StatusUnauthorized:
		p.wantError("access token after logout", r, http.StatusUnauthorized, "token_revoked")
		return Revoked
	case http.StatusOK:
		// Logging out again still works: the token is still accepted.
		p.do(http.StatusNoContent, logoutReq(a.access))
		p.wantValidUntilExpiry("access token after logout", a.access)
		return UntilExpiry
	default:
		return p.unexpected("access token after logout", r)
	}
}

func othersStayAfterLogout(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	switch r := p.verify(a.access); r.Status {
	case http.StatusUnauthorized:
		// The second login already signed the first device out: it
		// cannot even log out, and its failed attempt changes nothing
		// for the other.
		p.wantError("first device after the second login", r, http.StatusUnauthorized, "token_revoked")
		p.wantError("logout by the replaced device", p.send(logoutReq(a.access)), http.StatusUnauthorized, "token_revoked")
		p.wantVerify("current device", b.access, http.StatusOK)
		return Replaced
	case http.StatusOK:
		p.do(http.StatusNoContent, logoutReq(a.access))
		p.wantVerify("other device after logout", b.access, http.StatusOK)
		r := p.refresh(b.refresh)
		if r.Status != http.StatusOK {
			p.fatalf("refresh of the other device after logout: %s %.200s", r, r.Raw)
		}
		p.wantVerify("other device's refreshed token", p.loginOf(r).access, http.StatusOK)
		return Coexist
	default:
		return p.unexpected("first device after the second login", r)
	}
}

func logoutOthers(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	r := p.send(Request{Method: http.MethodPost, Path: "/api/v1/auth/logout-others", Token: b.access})
	switch r.Status {
	case http.StatusNoContent:
		if len(r.Raw) != 0 {
			p.fatalf("logout-others: 204 with a body %.200s", r.Raw)
		}
		p.wantVerify("caller after logout-others", b.access, http.StatusOK)
		p.wantError("other device after logout-others", p.verify(a.access), http.StatusUnauthorized, "token_revoked")
		p.wantError("other device's refresh", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
		if rr := p.refresh(b.refresh); rr.Status != http.StatusOK {
			p.fatalf("caller's refresh after logout-others: %s %.200s", rr, rr.Raw)
		}
		return KeepsCaller
	case http.StatusOK:
		fresh := p.loginOf(r)
		if fresh.id == b.id {
			p.fatalf("logout-others reissued the caller's old login id")
		}
		p.wantRejected("caller's old token", b.access)
		p.wantRejected("other device", a.access)
		p.wantVerify("fresh token", fresh.access, http.StatusOK)
		p.wantError("other device's refresh", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
		p.wantError("caller's old refresh", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
		if rr := p.refresh(fresh.refresh); rr.Status != http.StatusOK {
			p.fatalf("fresh refresh token: %s %.200s", rr, rr.Raw)
		}
		return Reissues
	case http.StatusNotImplemented:
		p.wantError("logout-others", r, http.StatusNotImplemented, "not_supported")
		if n := p.revokedRefresh(u.id); n != 0 {
			p.fatalf("a refused logout-others revoked %d refresh tokens", n)
		}
		p.wantValidUntilExpiry("tokens after a refused logout-others", a.access, b.access)
		return NotSupported
	default:
		return p.unexpected("logout-others", r)
	}
}

func logoutAll(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	switch r := p.send(logoutAllReq(b.access)); r.Status {
	case http.StatusNoContent:
		p.wantRejected("first device after logout-all", a.access)
		p.wantRejected("caller after logout-all", b.access)
		p.wantError("refresh after logout-all", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
		return Revoked
	case http.StatusNotImplemented:
		p.wantError("logout-all", r, http.StatusNotImplemented, "not_supported")
		if n := p.revokedRefresh(u.id); n != 0 {
			p.fatalf("a refused logout-all revoked %d refresh tokens", n)
		}
		p.wantValidUntilExpiry("tokens after a refused logout-all", a.access, b.access)
		return NotSupported
	default:
		return p.unexpected("logout-all", r)
	}
}

func noRefreshAfterLogoutAll(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	switch r := p.send(logoutAllReq(b.access)); r.Status {
	case http.StatusNoContent:
		p.wantError("first device's refresh after logout-all", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
		p.wantError("caller's refresh after logout-all", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
		return Revoked
	case http.StatusNotImplemented:
		p.wantError("logout-all", r, http.StatusNotImplemented, "not_supported")
		for _, l := range []login{a, b} {
			if rr := p.refresh(l.refresh); rr.Status != http.StatusOK {
				p.fatalf("refresh after a refused logout-all: %s %.200s", rr, rr.Raw)
			}
		}
		return NotSupported
	default:
		return p.unexpected("logout-all", r)
	}
}

func sameInstant(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	switch r := p.send(logoutAllReq(a.access)); r.Status {
	case http.StatusNoContent:
		b := p.login(u.email, password, "laptop")
		p.wantVerify("login in the same instant as logout-all", b.access, http.StatusOK)
		p.wantRejected("token from before logout-all", a.access)
		return Revoked
	case http.StatusNotImplemented:
		p.wantError("logout-all", r, http.StatusNotImplemented, "not_supported")
		b := p.login(u.email, password, "laptop")
		p.wantVerify("login after a refused logout-all", b.access, http.StatusOK)
		p.wantVerify("token from before a refused logout-all", a.access, http.StatusOK)
		return NotSupported
	default:
		return p.unexpected("logout-all", r)
	}
}

func passwordChange(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	r := p.do(http.StatusOK, Request{Method: http.MethodPut, Path: "/api/v1/me/password", Token: b.access,
		Body: map[string]string{"current_password": password, "new_password": newPassword}})
	fresh := p.loginOf(r)
	p.wantVerify("token from the password change", fresh.access, http.StatusOK)
	// Refresh families end on every strategy.
	p.wantError("old refresh token", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
	p.wantError("login with the old password", p.send(loginReq(u.email, password, "")), http.StatusUnauthorized, "invalid_credentials")
	switch r := p.verify(b.access); {
	case isRejected(r):
		p.wantRejected("other device after password change", a.access)
		p.wantVerify("token from the password change", fresh.access, http.StatusOK)
		n := p.login(u.email, newPassword, "tablet")
		p.wantVerify("login with the new password", n.access, http.StatusOK)
		return Revoked
	case r.Status == http.StatusOK:
		n := p.login(u.email, newPassword, "tablet")
		p.wantVerify("login with the new password", n.access, http.StatusOK)
		p.wantValidUntilExpiry("old tokens after password change", a.access, b.access)
		return UntilExpiry
	default:
		return p.unexpected("caller's old token after password change", r)
	}
}

func passwordReset(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	p.do(http.StatusAccepted, Request{Method: http.MethodPost, Path: "/api/v1/auth/password-reset", Body: map[string]string{"email": u.email}})
	token := p.e.Server.ResetToken(u.email)
	if token == "" {
		p.fatalf("no reset token was sent")
	}
	p.do(http.StatusNoContent, Request{Method: http.MethodPost, Path: "/api/v1/auth/password-reset/confirm",
		Body: map[string]string{"token": token, "new_password": newPassword}})
	p.wantError("refresh after reset", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
	n := p.login(u.email, newPassword, "tablet")
	p.wantVerify("login with the new password", n.access, http.StatusOK)
	switch r := p.verify(b.access); {
	case isRejected(r):
		p.wantRejected("first device after reset", a.access)
		return Revoked
	case r.Status == http.StatusOK:
		p.wantValidUntilExpiry("tokens after reset", a.access, b.access)
		return UntilExpiry
	default:
		return p.unexpected("second device after reset", r)
	}
}

func accountDeletion(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	p.do(http.StatusNoContent, Request{Method: http.MethodDelete, Path: "/api/v1/me", Token: b.access, Body: map[string]string{"password": password}})
	if n := p.rows(u.id); n != (rows{}) {
		p.fatalf("after deletion: live refresh tokens, sessions, users = %+v, want none", n)
	}
	// Whatever the strategy, the account is gone for everything that reads it.
	p.wantError("GET /me after deletion", p.send(Request{Method: http.MethodGet, Path: "/api/v1/me", Token: b.access}),
		http.StatusUnauthorized, "token_invalid")
	p.wantError("refresh after deletion", p.refresh(b.refresh), http.StatusUnauthorized, "token_invalid")
	p.wantError("login after deletion", p.send(loginReq(u.email, password, "")), http.StatusUnauthorized, "invalid_credentials")
	switch r := p.verify(b.access); {
	case isRejected(r):
		p.wantRejected("first device after deletion", a.access)
		return Revoked
	case r.Status == http.StatusOK:
		// stateless does not look at the user: verify still says yes.
		p.wantValidUntilExpiry("tokens after deletion", a.access, b.access)
		return UntilExpiry
	default:
		return p.unexpected("second device after deletion", r)
	}
}

func newLogin(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	p.wantVerify("new login", b.access, http.StatusOK)
	switch r := p.verify(a.access); r.Status {
	case http.StatusUnauthorized:
		p.wantError("old device after a new login", r, http.StatusUnauthorized, "token_revoked")
		p.wantError("old device's refresh after a new login", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
		return Replaced
	case http.StatusOK:
		return Coexist
	default:
		return p.unexpected("old device after a new login", r)
	}
}

func listDevices(p *probe) Outcome {
	u, v := p.newUser(), p.newUser()
	ip := p.e.ClientIP
	t0 := p.e.Server.Now()
	a := p.login(u.email, password, "laptop")
	p.e.Server.Advance(time.Second)
	t1 := p.e.Server.Now()
	b := p.login(u.email, password, "phone")
	other := p.login(v.email, password, "stranger")
	switch r := p.send(sessionsReq(a.access)); r.Status {
	case http.StatusOK:
		want := func(current string) []device {
			return []device{
				{ID: a.id, DeviceName: "laptop", UserAgent: "ua/laptop", IP: ip, CreatedAt: t0, LastSeenAt: t0, Current: current == a.id},
				{ID: b.id, DeviceName: "phone", UserAgent: "ua/phone", IP: ip, CreatedAt: t1, LastSeenAt: t1, Current: current == b.id},
			}
		}
		p.wantDevices("list of the first device", p.devicesOf(r), want(a.id))
		p.wantDevices("list of the second device", p.devices(b.access), want(b.id))
		p.wantDevices("other user's list", p.devices(other.access), []device{
			{ID: other.id, DeviceName: "stranger", UserAgent: "ua/stranger", IP: ip, CreatedAt: t1, LastSeenAt: t1, Current: true},
		})
		return Listed
	case http.StatusUnauthorized:
		p.wantError("list by the replaced device", r, http.StatusUnauthorized, "token_revoked")
		p.wantDevices("list of the current device", p.devices(b.access), []device{
			{ID: b.id, DeviceName: "phone", UserAgent: "ua/phone", IP: ip, CreatedAt: t1, LastSeenAt: t1, Current: true},
		})
		p.wantDeviceIDs("other user's list", other.access, other.id)
		return OneDevice
	case http.StatusNotImplemented:
		p.wantError("list devices", r, http.StatusNotImplemented, "not_supported")
		return NotSupported
	default:
		return p.unexpected("list devices", r)
	}
}

func lastSeen(p *probe) Outcome {
	u := p.newUser()
	t0 := p.e.Server.Now()
	a := p.login(u.email, password, "laptop")
	r := p.send(sessionsReq(a.access))
	switch r.Status {
	case http.StatusOK:
	case http.StatusNotImplemented:
		p.wantError("list devices", r, http.StatusNotImplemented, "not_supported")
		return NotSupported
	default:
		return p.unexpected("list devices", r)
	}
	lastSeen := func(what string, want time.Time) {
		devs := p.devices(a.access)
		if len(devs) != 1 || devs[0].ID != a.id {
			p.fatalf("%s: devices %+v, want just %s", what, devs, a.id)
		}
		if !devs[0].LastSeenAt.Equal(want) || !devs[0].CreatedAt.Equal(t0) {
			p.fatalf("%s: created_at %s last_seen_at %s, want %s %s", what, devs[0].CreatedAt, devs[0].LastSeenAt, t0, want)
		}
	}
	p.e.Server.Advance(30 * time.Second)
	p.wantVerify("within the minute", a.access, http.StatusOK)
	lastSeen("verified within a minute", t0)
	p.e.Server.Advance(31 * time.Second)
	t1 := p.e.Server.Now()
	p.wantVerify("after a minute", a.access, http.StatusOK)
	lastSeen("verified after more than a minute", t1)
	p.e.Server.Advance(30 * time.Second)
	p.wantVerify("within the next minute", a.access, http.StatusOK)
	lastSeen("verified within a minute of the last update", t1)
	// The device list itself is a request of the device: it shows it as
	// seen now, not as of the request before.
	p.e.Server.Advance(31 * time.Second)
	lastSeen("listed more than a minute after the last update", p.e.Server.Now())
	return Throttled
}

func revokeDevice(p *probe) Outcome {
	u, v := p.newUser(), p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	other := p.login(v.email, password, "stranger")
	// Neither someone else's device nor an unknown id can be revoked, and
	// trying changes nothing.
	refused := func(caller string) {
		before := p.rows(u.id)
		p.wantError("revoke another user's device", p.send(revokeReq(caller, other.id)), http.StatusNotFound, "not_found")
		p.wantError("revoke an unknown device", p.send(revokeReq(caller, "no-such-device")), http.StatusNotFound, "not_found")
		if after := p.rows(u.id); after != before {
			p.fatalf("refused revocations changed the rows: %+v -> %+v", before, after)
		}
		p.wantVerify("other user's device after a refused revocation", other.access, http.StatusOK)
		p.wantVerify("caller after a refused revocation", caller, http.StatusOK)
	}
	if r := p.verify(a.access); r.Status == http.StatusUnauthorized {
		// The second login replaced the first: its id is no live device.
		p.wantError("first device after the second login", r, http.StatusUnauthorized, "token_revoked")
		refused(b.access)
		p.wantError("revoke the replaced device", p.send(revokeReq(b.access, a.id)), http.StatusNotFound, "not_found")
		p.wantVerify("caller", b.access, http.StatusOK)
		p.do(http.StatusNoContent, revokeReq(b.access, b.id))
		p.wantError("revoked own device", p.verify(b.access), http.StatusUnauthorized, "token_revoked")
		p.wantVerify("other user's device", other.access, http.StatusOK)
		return OneDevice
	} else if r.Status != http.StatusOK {
		return p.unexpected("first device after the second login", r)
	}
	switch r := p.send(revokeReq(a.access, b.id)); r.Status {
	case http.StatusNoContent:
		p.wantError("revoked device", p.verify(b.access), http.StatusUnauthorized, "token_revoked")
		p.wantError("revoked device's refresh", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
		p.wantVerify("caller after revoking another device", a.access, http.StatusOK)
		p.wantDeviceIDs("after revoking", a.access, a.id)
		p.wantError("revoke the same device again", p.send(revokeReq(a.access, b.id)), http.StatusNotFound, "not_found")
		refused(a.access)
		return Revoked
	case http.StatusNotImplemented:
		p.wantError("revoke a device", r, http.StatusNotImplemented, "not_supported")
		p.wantVerify("device after a refused revocation", b.access, http.StatusOK)
		p.wantVerify("caller after a refused revocation", a.access, http.StatusOK)
		return NotSupported
	default:
		return p.unexpected("revoke a device", r)
	}
}

func deviceLimitReject(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	b := p.login(u.email, password, "phone")
	if r := p.verify(a.access); r.Status == http.StatusUnauthorized {
		c := p.login(u.email, password, "tablet")
		p.wantVerify("third login", c.access, http.StatusOK)
		p.wantRejected("second device", b.access)
		return Replaced
	} else if r.Status != http.StatusOK {
		return p.unexpected("first device after the second login", r)
	}
	// What a refused login must leave as it was.
	var list []device
	if r := p.send(sessionsReq(a.access)); r.Status == http.StatusOK {
		list = p.devicesOf(r)
	}
	before := p.rows(u.id)
	switch r := p.send(loginReq(u.email, password, "tablet")); r.Status {
	case http.StatusForbidden:
		p.wantError("third login", r, http.StatusForbidden, "device_limit")
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "refresh_token" {
				p.fatalf("a refused login set a refresh cookie")
			}
		}
		if after := p.rows(u.id); after != before {
			p.fatalf("a refused login changed the rows: %+v -> %+v", before, after)
		}
		if list == nil {
			p.fatalf("a device limit without a device list")
		}
		p.wantDevices("devices after a refused login", p.devices(a.access), list)
		p.wantVerify("first device after a refused login", a.access, http.StatusOK)
		p.wantVerify("second device after a refused login", b.access, http.StatusOK)
		return Enforced
	case http.StatusOK:
		c := p.loginOf(r)
		for _, l := range []login{a, b, c} {
			p.wantVerify("every login beyond devices.max", l.access, http.StatusOK)
		}
		return Unlimited
	default:
		return p.unexpected("third login", r)
	}
}

func deviceLimitEvict(p *probe) Outcome {
	u := p.newUser()
	// a is the oldest login, b the least recently seen once a has been
	// used again: b must go, not a.
	a := p.login(u.email, password, "laptop")
	p.e.Server.Advance(time.Second)
	b := p.login(u.email, password, "phone")
	p.e.Server.Advance(2 * time.Minute)
	if r := p.verify(a.access); r.Status == http.StatusUnauthorized {
		c := p.login(u.email, password, "tablet")
		p.wantVerify("third login", c.access, http.StatusOK)
		p.wantRejected("first device", a.access)
		p.wantRejected("second device", b.access)
		return Replaced
	} else if r.Status != http.StatusOK {
		return p.unexpected("first device, seen again", r)
	}
	c := p.login(u.email, password, "tablet")
	p.wantVerify("third login", c.access, http.StatusOK)
	switch r := p.verify(b.access); r.Status {
	case http.StatusUnauthorized:
		p.wantError("least recently seen device", r, http.StatusUnauthorized, "token_revoked")
		p.wantError("least recently seen device's refresh", p.refresh(b.refresh), http.StatusUnauthorized, "token_revoked")
		p.wantVerify("recently seen device", a.access, http.StatusOK)
		p.wantDeviceIDs("after eviction", c.access, a.id, c.id)
		return Enforced
	case http.StatusOK:
		p.wantVerify("every login beyond devices.max", a.access, http.StatusOK)
		return Unlimited
	default:
		return p.unexpected("least recently seen device", r)
	}
}

// refreshReuse spends a refresh token, moves the clock past the grace
// window and presents it again from the cookie: that must be reported as
// reuse and end the family, its successor included.
func refreshReuse(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	successor := p.loginOf(p.do(http.StatusOK, Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh",
		Body: map[string]string{"refresh_token": a.refresh}}))
	p.e.Server.Advance(p.e.Config.JWT.RefreshReuseGrace + time.Second)
	r := p.send(Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh", Header: map[string]string{
		"Cookie": "refresh_token=" + a.refresh, "X-Requested-With": "XMLHttpRequest"}})
	p.wantError("a spent refresh token presented after the grace window", r, http.StatusUnauthorized, "refresh_token_reused")
	if r := p.refresh(successor.refresh); r.Status != http.StatusUnauthorized {
		p.fatalf("the successor of the reused refresh token still refreshes: %s", r)
	}
	return ReuseDetected
}

// refreshSupersedes refreshes a login and looks at the access token the
// refresh replaced.
func refreshSupersedes(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "laptop")
	fresh := p.loginOf(p.do(http.StatusOK, Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh",
		Body: map[string]string{"refresh_token": a.refresh}}))
	if fresh.id != a.id {
		p.fatalf("a refresh changed the login id from %s to %s", a.id, fresh.id)
	}
	p.wantVerify("token of the refresh", fresh.access, http.StatusOK)
	switch r := p.verify(a.access); r.Status {
	case http.StatusUnauthorized:
		p.wantError("access token the refresh replaced", r, http.StatusUnauthorized, "token_revoked")
		// Each refresh ends the one before; the login lives on.
		next := p.loginOf(p.do(http.StatusOK, Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh",
			Body: map[string]string{"refresh_token": fresh.refresh}}))
		p.wantError("access token of the previous refresh", p.verify(fresh.access), http.StatusUnauthorized, "token_revoked")
		p.wantVerify("token of the latest refresh", next.access, http.StatusOK)
		return Revoked
	case http.StatusOK:
		p.wantVerify("token of the refresh, beside the old one", fresh.access, http.StatusOK)
		p.wantValidUntilExpiry("access token the refresh replaced", a.access)
		return UntilExpiry
	default:
		return p.unexpected("access token the refresh replaced", r)
	}
}

// mfaEnrollEndsOthers enrolls and confirms TOTP from one login, with the
// code computed at the server's clock, and looks at another login of the
// account: its access token and its refresh token.
func mfaEnrollEndsOthers(p *probe) Outcome {
	u := p.newUser()
	a := p.login(u.email, password, "phone")
	b := p.login(u.email, password, "laptop")
	// (Under single_device the second login already ended the first.)
	r := p.do(http.StatusCreated, Request{Method: http.MethodPost, Path: "/api/v1/me/mfa/totp", Token: b.access,
		Body: map[string]string{"password": password}})
	secret := r.str("secret")
	code, err := totp.GenerateCodeCustom(secret, p.e.Server.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		p.fatalf("compute a TOTP code: %v", err)
	}
	fresh := p.loginOf(p.do(http.StatusOK, Request{Method: http.MethodPost, Path: "/api/v1/me/mfa/totp/" + r.str("id") + "/confirm", Token: b.access,
		Body: map[string]string{"code": code}}))
	p.wantVerify("the enrolling login's fresh token", fresh.access, http.StatusOK)
	p.wantError("the other login's refresh", p.refresh(a.refresh), http.StatusUnauthorized, "token_revoked")
	if v := p.verify(a.access); isRejected(v) {
		return Revoked
	}
	p.wantValidUntilExpiry("the other login's access token", a.access)
	return UntilExpiry
}
