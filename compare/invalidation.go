package compare

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/scenario"
)

// kind is a request whose invalidation cost is measured: a revocation, or
// a login or refresh, which change the verification state under some
// strategies.
type kind struct {
	id, title, request string
	// setting names the server variant (see strat.server) it runs on.
	setting   string
	configure func(*config.Config)
	// prepare returns the request to measure, for a user signed in on a
	// phone, then a laptop; what it sends itself is not counted.
	prepare func(ctx context.Context, s *strat, sv *server, email string, phone, laptop session) (call, error)
	// ok are the statuses of success; 501 not_supported means the
	// strategy cannot do it.
	ok []int
}

// kinds lists the measured requests, in report order.
func kinds() []kind {
	fixed := func(c func(email string, phone, laptop session) call) func(context.Context, *strat, *server, string, session, session) (call, error) {
		return func(_ context.Context, _ *strat, _ *server, email string, phone, laptop session) (call, error) {
			return c(email, phone, laptop), nil
		}
	}
	refresh := fixed(func(_ string, _, laptop session) call {
		return call{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": laptop.refresh}}
	})
	var supersede scenario.Case
	for _, c := range scenario.All() {
		if c.ID == "refresh_supersedes_access_on" {
			supersede = c
		}
	}
	return []kind{
		{id: "logout", title: "logout", request: "POST /api/v1/auth/logout", ok: []int{http.StatusNoContent},
			prepare: fixed(func(_ string, _, laptop session) call {
				return call{method: "POST", path: "/api/v1/auth/logout", token: laptop.access}
			})},
		{id: "logout_all", title: "logout-all", request: "POST /api/v1/auth/logout-all", ok: []int{http.StatusNoContent},
			prepare: fixed(func(_ string, _, laptop session) call {
				return call{method: "POST", path: "/api/v1/auth/logout-all", token: laptop.access}
			})},
		{id: "logout_others", title: "logout-others", request: "POST /api/v1/auth/logout-others", ok: []int{http.StatusOK, http.StatusNoContent},
			prepare: fixed(func(_ string, _, laptop session) call {
				return call{method: "POST", path: "/api/v1/auth/logout-others", token: laptop.access}
			})},
		{id: "revoke_device", title: "device revocation", request: "DELETE /api/v1/sessions/{id}", ok: []int{http.StatusNoContent},
			prepare: revokeDeviceCall},
		{id: "password_change", title: "password change", request: "PUT /api/v1/me/password", ok: []int{http.StatusOK},
			prepare: fixed(func(_ string, _, laptop session) call {
				return call{method: "PUT", path: "/api/v1/me/password", token: laptop.access,
					body: map[string]string{"current_password": password, "new_password": "compare-password-2"}}
			})},
		{id: "password_reset", title: "password reset", request: "POST /api/v1/auth/password-reset/confirm", ok: []int{http.StatusNoContent},
			prepare: resetConfirmCall},
		{id: "account_deletion", title: "account deletion", request: "DELETE /api/v1/me", ok: []int{http.StatusNoContent},
			prepare: fixed(func(_ string, _, laptop session) call {
				return call{method: "DELETE", path: "/api/v1/me", token: laptop.access, body: map[string]string{"password": password}}
			})},
		{id: "login", title: "login (a third device)", request: "POST /api/v1/auth/login", ok: []int{http.StatusOK},
			prepare: fixed(func(email string, _, _ session) call {
				return call{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"User-Agent": userAgent},
					body: map[string]string{"email": email, "password": password, "device_name": "tablet"}}
			})},
		{id: "refresh", title: "refresh", request: "POST /api/v1/auth/refresh", ok: []int{http.StatusOK}, prepare: refresh},
		{id: "refresh_supersede", title: "refresh (" + supersede.Setting + ")", request: "POST /api/v1/auth/refresh",
			setting: supersede.Setting, configure: supersede.Configure, ok: []int{http.StatusOK}, prepare: refresh},
	}
}

// revokeDeviceCall revokes the phone from the laptop, or under
// single_device, where the laptop's login ended the phone's, the laptop
// itself.
func revokeDeviceCall(ctx context.Context, _ *strat, sv *server, _ string, phone, laptop session) (call, error) {
	target := phone.sid
	a, err := sv.client.do(ctx, call{method: "GET", path: "/api/v1/auth/verify", token: phone.access})
	if err != nil {
		return call{}, err
	}
	if a.Status == http.StatusUnauthorized {
		target = laptop.sid
	}
	return call{method: "DELETE", path: "/api/v1/sessions/" + target, token: laptop.access}, nil
}

// resetConfirmCall requests a reset (not counted) and confirms it.
func resetConfirmCall(ctx context.Context, s *strat, sv *server, email string, _, _ session) (call, error) {
	if _, err := sv.client.expect(ctx, http.StatusAccepted, call{method: "POST", path: "/api/v1/auth/password-reset",
		body: map[string]string{"email": email}}); err != nil {
		return call{}, err
	}
	token := s.resetToken(email)
	if token == "" {
		return call{}, fmt.Errorf("no reset token was sent to %s", email)
	}
	return call{method: "POST", path: "/api/v1/auth/password-reset/confirm",
		body: map[string]string{"token": token, "new_password": "compare-password-2"}}, nil
}

// measureInvalidation measures every kind on the strategy, each on a
// fresh user: the INSERT/UPDATE/DELETE statements and the outbox rows of
// that one request, background work excluded.
func measureInvalidation(ctx context.Context, s *strat, cleanups *[]func()) error {
	for _, k := range kinds() {
		sv, err := s.server(ctx, k.setting, k.configure, cleanups)
		if err != nil {
			return err
		}
		email, _, err := s.register(ctx, sv.client)
		if err != nil {
			return err
		}
		phone, err := login(ctx, sv.client, email, "phone")
		if err != nil {
			return err
		}
		laptop, err := login(ctx, sv.client, email, "laptop")
		if err != nil {
			return err
		}
		c, err := k.prepare(ctx, s, sv, email, phone, laptop)
		if err != nil {
			return fmt.Errorf("%s: %w", k.id, err)
		}
		writes, outbox := sv.count.writes.Load(), sv.count.outbox.Load()
		a, err := sv.client.do(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", k.id, err)
		}
		cost := invalidationCost{
			supported: a.Status != http.StatusNotImplemented,
			writes:    sv.count.writes.Load() - writes, messages: sv.count.outbox.Load() - outbox,
		}
		if cost.supported && !slices.Contains(k.ok, a.Status) {
			return fmt.Errorf("%s: %s %s answered %d: %.200s", k.id, c.method, c.path, a.Status, a.Raw)
		}
		s.invalidation[k.id] = cost
	}
	return nil
}
