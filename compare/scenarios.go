package compare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// guarantee is one row of the guarantees table: what a client of the API is
// promised, the claim under which a strategy promises it, and the scenario
// that checks it through the HTTP API.
type guarantee struct {
	id, title string
	// claim is a capability key of GET /api/v1/strategy, or single_login /
	// multiple_logins (see singleLogin); "" means every strategy promises
	// it.
	claim string
	// unclaimedMayHold marks a row about not revoking too much: a strategy
	// that does not claim it may still show it without a mismatch.
	unclaimedMayHold bool
	// limited runs the scenario on the server with devices.max = 2.
	limited bool
	run     func(ctx context.Context, p *probe) error
}

// guarantees is the table, in report order.
var guarantees = []guarantee{
	{id: "logout_this_device", title: "token rejected after logout on this device",
		claim: "logout_this_device", run: logoutThisDevice},
	{id: "others_stay_after_logout", title: "other devices stay signed in after that logout",
		claim: "multiple_logins", unclaimedMayHold: true, run: othersStayAfterLogout},
	{id: "logout_all", title: "all tokens rejected after logout-all",
		claim: "logout_all_devices", run: logoutAll},
	{id: "password_change", title: "all tokens rejected after password change",
		claim: "revoke_on_password_change", run: passwordChange},
	{id: "password_reset", title: "all tokens rejected after password reset",
		claim: "revoke_on_password_change", run: passwordReset},
	{id: "account_deletion", title: "all tokens rejected after account deletion",
		claim: "revoke_on_account_deletion", run: accountDeletion},
	{id: "new_login_signs_out_others", title: "a new login signs out other devices",
		claim: "single_login", run: newLoginSignsOutOthers},
	{id: "list_devices", title: "devices can be listed",
		claim: "list_devices", run: listDevices},
	{id: "revoke_device", title: "one device can be revoked",
		claim: "revoke_device", run: revokeDevice},
	{id: "device_limit", title: "device limit enforced (devices.max=2)",
		claim: "device_limit", limited: true, run: deviceLimit},
	{id: "refresh_reuse_detected", title: "refresh token reuse detected",
		claim: "", run: refreshReuse},
	{id: "no_refresh_after_logout_all", title: "refresh impossible after logout-all",
		claim: "logout_all_devices", run: noRefreshAfterLogoutAll},
}

// shortfall is a scenario's finding that its guarantee does not hold. Any
// other error of a scenario means it broke.
type shortfall string

func (s shortfall) Error() string { return string(s) }

func shortfallf(format string, args ...any) error { return shortfall(fmt.Sprintf(format, args...)) }

// judge turns a scenario's outcome into the cell and, where the outcome
// disagrees with the claim or the scenario broke, a mismatch.
func judge(g guarantee, name string, claimed bool, err error) (Cell, *Mismatch) {
	var sf shortfall
	held := err == nil
	m := &Mismatch{Strategy: name, Guarantee: g.id, Claimed: claimed, Held: held}
	switch {
	case held:
		m.Detail = "the scenario passed, but the strategy does not claim " + claimName(g)
	case errors.As(err, &sf):
		m.Detail = string(sf)
	default:
		m.Detail = "the scenario broke: " + err.Error()
		return Fail, m
	}
	switch {
	case claimed && held:
		return Pass, nil
	case claimed:
		return Fail, m
	case held && g.unclaimedMayHold:
		return Pass, nil
	case held:
		return Pass, m
	default:
		return NA, nil
	}
}

func claimName(g guarantee) string {
	if g.claim == "" {
		return "it"
	}
	return g.claim
}

// probe is what a scenario works with: one server of the strategy, on which
// it registers users of its own.
type probe struct {
	e *env
	c *client
}

const (
	password    = "compare-password-1"
	newPassword = "compare-password-2"
)

// login is what a login hands a device.
type login struct {
	device          string
	access, refresh string
	sid             string
}

// user registers a new user and returns its email and id.
func (p *probe) user(ctx context.Context) (email, id string, err error) {
	email = fmt.Sprintf("user%d@compare.example.com", p.e.users.Add(1))
	a, err := p.expect(ctx, http.StatusCreated, call{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": email, "password": password}})
	if err != nil {
		return "", "", err
	}
	u, _ := a.body["user"].(map[string]any)
	id, _ = u["id"].(string)
	if id == "" {
		return "", "", fmt.Errorf("register: no user id in %.200s", a.raw)
	}
	return email, id, nil
}

// login signs the user in on the named device with the given password.
func (p *probe) login(ctx context.Context, email, pw, device string) (*login, error) {
	a, err := p.expect(ctx, http.StatusOK, loginCall(email, pw, device))
	if err != nil {
		return nil, err
	}
	return tokensOf(a, device)
}

func loginCall(email, pw, device string) call {
	return call{method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": email, "password": pw, "device_name": device}}
}

// tokensOf reads the tokens of a login-shaped answer.
func tokensOf(a *answer, device string) (*login, error) {
	l := &login{device: device, access: a.str("access_token"), refresh: a.str("refresh_token")}
	if l.access == "" || l.refresh == "" {
		return nil, fmt.Errorf("no tokens in the answer %.200s", a.raw)
	}
	sid, err := sidOf(l.access)
	if err != nil {
		return nil, err
	}
	l.sid = sid
	return l, nil
}

// twoDevices registers a user and signs it in on a phone, then a laptop.
func (p *probe) twoDevices(ctx context.Context) (email string, phone, laptop *login, err error) {
	if email, _, err = p.user(ctx); err != nil {
		return "", nil, nil, err
	}
	if phone, err = p.login(ctx, email, password, "phone"); err != nil {
		return "", nil, nil, err
	}
	if laptop, err = p.login(ctx, email, password, "laptop"); err != nil {
		return "", nil, nil, err
	}
	return email, phone, laptop, nil
}

// expect sends a request that every strategy must answer with want: the
// scenario breaks otherwise.
func (p *probe) expect(ctx context.Context, want int, r call) (*answer, error) {
	a, err := p.c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.status != want {
		return nil, fmt.Errorf("%s %s answered %d, want %d: %.200s", r.method, r.path, a.status, want, a.raw)
	}
	return a, nil
}

// want sends the request under test: another status than want is a
// shortfall (e.g. 501 not_supported).
func (p *probe) want(ctx context.Context, want int, r call) (*answer, error) {
	a, err := p.c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.status != want {
		return nil, shortfallf("%s %s answered %s", r.method, r.path, a)
	}
	return a, nil
}

// active reports whether GET /api/v1/auth/verify accepts the login's
// access token.
func (p *probe) active(ctx context.Context, l *login) (bool, error) {
	a, err := p.c.do(ctx, call{method: "GET", path: "/api/v1/auth/verify", token: l.access})
	if err != nil {
		return false, err
	}
	switch a.status {
	case http.StatusOK:
		if sid := a.str("sid"); sid != l.sid {
			return false, fmt.Errorf("verify answered sid %q for a token of %q", sid, l.sid)
		}
		return true, nil
	case http.StatusUnauthorized:
		return false, nil
	default:
		return false, fmt.Errorf("verify answered %s", a)
	}
}

// rejected is a shortfall unless verify rejects every one of the logins.
func (p *probe) rejected(ctx context.Context, after string, ls ...*login) error {
	for _, l := range ls {
		ok, err := p.active(ctx, l)
		if err != nil {
			return err
		}
		if ok {
			return shortfallf("the %s's access token was still accepted %s", l.device, after)
		}
	}
	return nil
}

// accepted is a shortfall unless verify accepts every one of the logins.
func (p *probe) accepted(ctx context.Context, after string, ls ...*login) error {
	for _, l := range ls {
		ok, err := p.active(ctx, l)
		if err != nil {
			return err
		}
		if !ok {
			return shortfallf("the %s's access token was rejected %s", l.device, after)
		}
	}
	return nil
}

func logoutCall(l *login) call {
	return call{method: "POST", path: "/api/v1/auth/logout", token: l.access}
}

func logoutAllCall(l *login) call {
	return call{method: "POST", path: "/api/v1/auth/logout-all", token: l.access}
}

func refreshCall(refresh string) call {
	return call{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": refresh}}
}

func logoutThisDevice(ctx context.Context, p *probe) error {
	email, _, err := p.user(ctx)
	if err != nil {
		return err
	}
	laptop, err := p.login(ctx, email, password, "laptop")
	if err != nil {
		return err
	}
	if _, err := p.expect(ctx, http.StatusNoContent, logoutCall(laptop)); err != nil {
		return err
	}
	return p.rejected(ctx, "after it logged out", laptop)
}

// othersStayAfterLogout logs out the newest device: under single_login the
// phone was already signed out by the laptop's login.
func othersStayAfterLogout(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	if _, err := p.expect(ctx, http.StatusNoContent, logoutCall(laptop)); err != nil {
		return err
	}
	return p.accepted(ctx, "after the laptop logged out", phone)
}

// Revoking scenarios act from the newest login, the one that is signed in
// under every strategy.

func logoutAll(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	if _, err := p.want(ctx, http.StatusNoContent, logoutAllCall(laptop)); err != nil {
		return err
	}
	return p.rejected(ctx, "after logout-all", phone, laptop)
}

func passwordChange(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	a, err := p.expect(ctx, http.StatusOK, call{method: "PUT", path: "/api/v1/me/password", token: laptop.access,
		body: map[string]string{"current_password": password, "new_password": newPassword}})
	if err != nil {
		return err
	}
	fresh, err := tokensOf(a, "laptop (after the change)")
	if err != nil {
		return err
	}
	if ok, err := p.active(ctx, fresh); err != nil || !ok {
		return errors.Join(errors.New("the tokens the password change answered with are rejected"), err)
	}
	return p.rejected(ctx, "after the password change", phone, laptop)
}

func passwordReset(ctx context.Context, p *probe) error {
	email, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	a, err := p.expect(ctx, http.StatusAccepted, call{method: "POST", path: "/api/v1/auth/password-reset",
		body: map[string]string{"email": email}})
	if err != nil {
		return err
	}
	token := a.str("reset_token")
	if token == "" {
		return errors.New("no reset_token in the answer although reset.expose_token is on")
	}
	if _, err := p.expect(ctx, http.StatusNoContent, call{method: "POST", path: "/api/v1/auth/password-reset/confirm",
		body: map[string]string{"token": token, "new_password": newPassword}}); err != nil {
		return err
	}
	if err := p.rejected(ctx, "after the password reset", phone, laptop); err != nil {
		return err
	}
	_, err = p.login(ctx, email, newPassword, "laptop (new password)")
	return err
}

func accountDeletion(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	if _, err := p.expect(ctx, http.StatusNoContent, call{method: "DELETE", path: "/api/v1/me", token: laptop.access,
		body: map[string]string{"password": password}}); err != nil {
		return err
	}
	return p.rejected(ctx, "after the account was deleted", phone, laptop)
}

func newLoginSignsOutOthers(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	if ok, err := p.active(ctx, laptop); err != nil || !ok {
		return errors.Join(errors.New("the newest login is rejected"), err)
	}
	return p.rejected(ctx, "after the laptop logged in", phone)
}

// listDevices passes when the list is exactly the logins that verify still
// accepts, with the caller's marked current.
func listDevices(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	a, err := p.want(ctx, http.StatusOK, call{method: "GET", path: "/api/v1/sessions", token: laptop.access})
	if err != nil {
		return err
	}
	var want []string
	names := map[string]string{}
	for _, l := range []*login{phone, laptop} {
		names[l.sid] = l.device
		ok, err := p.active(ctx, l)
		if err != nil {
			return err
		}
		if ok {
			want = append(want, l.device)
		}
	}
	list, _ := a.body["sessions"].([]any)
	var got []string
	current := ""
	for _, item := range list {
		s, _ := item.(map[string]any)
		id, _ := s["id"].(string)
		name, ok := names[id]
		if !ok {
			name = "unknown login " + id
		}
		got = append(got, name)
		if cur, _ := s["current"].(bool); cur {
			current = name
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return shortfallf("listed [%s], but the logins verify accepts are [%s]", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	if current != laptop.device {
		return shortfallf("the caller (laptop) is not the device marked current (%q)", current)
	}
	return nil
}

// revokeDevice revokes the phone from the laptop, or under single_login
// (where the phone is already signed out) the laptop itself; the other
// logins must stay.
func revokeDevice(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	target, others := phone, []*login{laptop}
	ok, err := p.active(ctx, phone)
	if err != nil {
		return err
	}
	if !ok {
		target, others = laptop, nil
	}
	if _, err := p.want(ctx, http.StatusNoContent, call{method: "DELETE", path: "/api/v1/sessions/" + target.sid, token: laptop.access}); err != nil {
		return err
	}
	if err := p.rejected(ctx, "after it was revoked", target); err != nil {
		return err
	}
	return p.accepted(ctx, "after another device was revoked", others...)
}

// deviceLimit runs on the server with devices.max = 2: the third login is
// refused with 403 device_limit and changes nothing.
func deviceLimit(ctx context.Context, p *probe) error {
	email, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	a, err := p.c.do(ctx, loginCall(email, password, "tablet"))
	if err != nil {
		return err
	}
	if a.status != http.StatusForbidden || a.code() != "device_limit" {
		return shortfallf("a third login with devices.max = 2 answered %s", a)
	}
	return p.accepted(ctx, "after the refused third login", phone, laptop)
}

// refreshReuse spends a refresh token, moves the clock past the grace
// window and presents it again from the cookie: that must be reported as
// reuse and end the family, its successor included.
func refreshReuse(ctx context.Context, p *probe) error {
	email, _, err := p.user(ctx)
	if err != nil {
		return err
	}
	laptop, err := p.login(ctx, email, password, "laptop")
	if err != nil {
		return err
	}
	a, err := p.expect(ctx, http.StatusOK, refreshCall(laptop.refresh))
	if err != nil {
		return err
	}
	successor := a.str("refresh_token")
	if successor == "" {
		return fmt.Errorf("no refresh_token in the refresh answer %.200s", a.raw)
	}
	p.e.clock.Advance(p.e.grace + time.Second)
	a, err = p.c.do(ctx, call{method: "POST", path: "/api/v1/auth/refresh", header: map[string]string{
		"Cookie": "refresh_token=" + laptop.refresh, "X-Requested-With": "XMLHttpRequest"}})
	if err != nil {
		return err
	}
	if a.status != http.StatusUnauthorized || a.code() != "refresh_token_reused" {
		return shortfallf("presenting a spent refresh token after the grace window answered %s", a)
	}
	a, err = p.c.do(ctx, refreshCall(successor))
	if err != nil {
		return err
	}
	if a.status != http.StatusUnauthorized {
		return shortfallf("the successor of the reused refresh token still refreshes: %s", a)
	}
	return nil
}

func noRefreshAfterLogoutAll(ctx context.Context, p *probe) error {
	_, phone, laptop, err := p.twoDevices(ctx)
	if err != nil {
		return err
	}
	if _, err := p.want(ctx, http.StatusNoContent, logoutAllCall(laptop)); err != nil {
		return err
	}
	for _, l := range []*login{phone, laptop} {
		a, err := p.c.do(ctx, refreshCall(l.refresh))
		if err != nil {
			return err
		}
		if a.status != http.StatusUnauthorized {
			return shortfallf("the %s's refresh token answered %s after logout-all", l.device, a)
		}
	}
	return nil
}
