package scenario

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revocable/authserver/models"
)

// probe is what a case's steps work with: the Env, and the users the case
// registered. Its helpers end the case (see Run) at the first answer that
// is not what they require.
type probe struct {
	ctx   context.Context
	e     Env
	tag   string
	users int
}

const (
	password    = "correct horse battery"
	newPassword = "a whole new passphrase"
)

func (p *probe) fatalf(format string, args ...any) {
	panic(failure{fmt.Errorf(format, args...)})
}

// unexpected ends the case: the answer fits none of its outcomes.
func (p *probe) unexpected(what string, r *Response) Outcome {
	p.fatalf("%s: unexpected answer %s: %.200s", what, r, r.Raw)
	return ""
}

// send sends the request. No answer, a server error (5xx other than 501
// not_supported) or an answer that is not JSON ends the case.
func (p *probe) send(r Request) *Response {
	if err := p.ctx.Err(); err != nil {
		p.fatalf("%s %s: %w", r.Method, r.Path, err)
	}
	resp, err := p.e.Server.Do(p.ctx, r)
	if err != nil {
		p.fatalf("%s %s: %w", r.Method, r.Path, err)
	}
	if len(bytes.TrimSpace(resp.Raw)) > 0 {
		if err := json.Unmarshal(resp.Raw, &resp.Body); err != nil {
			p.fatalf("%s %s: answer %d is not a JSON object: %.200q", r.Method, r.Path, resp.Status, resp.Raw)
		}
	}
	if resp.Status >= 500 && resp.Status != http.StatusNotImplemented {
		p.fatalf("%s %s: server error %d: %.200s", r.Method, r.Path, resp.Status, resp.Raw)
	}
	return resp
}

// do sends the request and requires the status.
func (p *probe) do(want int, r Request) *Response {
	out := p.send(r)
	if out.Status != want {
		p.fatalf("%s %s: answered %s, want %d: %.200s", r.Method, r.Path, out, want, out.Raw)
	}
	return out
}

// user is an account a case registered.
type user struct {
	email string
	id    uint64
}

// newUser registers an account of the case's own; its email is unique, so
// that cases may share a database.
func (p *probe) newUser() user {
	p.users++
	email := fmt.Sprintf("user%d-%s@example.com", p.users, p.tag)
	r := p.do(http.StatusCreated, Request{Method: http.MethodPost, Path: "/api/v1/auth/register",
		Body: map[string]string{"email": email, "password": password}})
	u, _ := r.Body["user"].(map[string]any)
	s, _ := u["id"].(string)
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		p.fatalf("register: no user id in %.200s", r.Raw)
	}
	return user{email: email, id: id}
}

// login is what a login hands a device.
type login struct {
	access, refresh string
	// id is the login (device, session) id: the token's sid.
	id string
}

func loginReq(email, pw, device string) Request {
	r := Request{Method: http.MethodPost, Path: "/api/v1/auth/login", Body: map[string]string{"email": email, "password": pw}}
	if device != "" {
		r.Body.(map[string]string)["device_name"] = device
		r.Header = map[string]string{"User-Agent": "ua/" + device}
	}
	return r
}

// login logs in with a User-Agent of its own, as a real client does, so
// that the device list has something to show.
func (p *probe) login(email, pw, device string) login {
	return p.loginOf(p.do(http.StatusOK, loginReq(email, pw, device)))
}

// loginOf reads the tokens of a login-shaped answer. The login id is the
// access token's sid claim: a client may read its own token's payload,
// which is signed, not encrypted.
func (p *probe) loginOf(r *Response) login {
	l := login{access: r.str("access_token"), refresh: r.str("refresh_token")}
	if l.access == "" || l.refresh == "" {
		p.fatalf("no tokens in %.200s", r.Raw)
	}
	parts := strings.Split(l.access, ".")
	var c struct {
		SID string `json:"sid"`
	}
	if len(parts) != 3 {
		p.fatalf("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil || c.SID == "" {
		p.fatalf("the access token carries no sid")
	}
	l.id = c.SID
	return l
}

func (p *probe) verify(token string) *Response {
	return p.send(Request{Method: http.MethodGet, Path: "/api/v1/auth/verify", Token: token})
}

func (p *probe) refresh(token string) *Response {
	return p.send(Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh", Body: map[string]string{"refresh_token": token}})
}

func logoutReq(token string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/auth/logout", Token: token}
}

func logoutAllReq(token string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/auth/logout-all", Token: token}
}

func sessionsReq(token string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/sessions", Token: token}
}

func revokeReq(token, id string) Request {
	return Request{Method: http.MethodDelete, Path: "/api/v1/sessions/" + id, Token: token}
}

// wantError requires the error answer.
func (p *probe) wantError(what string, r *Response, status int, code string) {
	if r.Status != status || r.code() != code {
		p.fatalf("%s: got %s, want %d %s: %.200s", what, r, status, code, r.Raw)
	}
}

// wantVerify requires GET /api/v1/auth/verify to answer status.
func (p *probe) wantVerify(what, token string, status int) {
	if r := p.verify(token); r.Status != status {
		p.fatalf("%s: verify answered %s, want %d", what, r, status)
	}
}

// isRejected reports whether a verify answer refuses the token as revoked
// or, for the strategies whose signing key changed or disappeared, as
// invalid.
func isRejected(r *Response) bool {
	return r.Status == http.StatusUnauthorized && (r.code() == "token_revoked" || r.code() == "token_invalid")
}

func (p *probe) wantRejected(what, token string) {
	if r := p.verify(token); !isRejected(r) {
		p.fatalf("%s: verify answered %s, want 401 token_revoked or token_invalid", what, r)
	}
}

// wantValidUntilExpiry shows the limitation of a strategy without state:
// the tokens still work, and stop only when they expire. It moves the
// clock past the access token lifetime, so it comes last in a case.
func (p *probe) wantValidUntilExpiry(what string, tokens ...string) {
	for _, tok := range tokens {
		p.wantVerify(what+", before expiry", tok, http.StatusOK)
	}
	p.e.Server.Advance(p.e.Config.JWT.AccessTTL + time.Second)
	for _, tok := range tokens {
		p.wantError(what+", after expiry", p.verify(tok), http.StatusUnauthorized, "token_expired")
	}
}

// device is one entry of GET /api/v1/sessions.
type device struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	Current    bool      `json:"current"`
}

// deviceFields are the fields every entry of the device list has, exactly.
var deviceFields = []string{"created_at", "current", "device_name", "id", "ip", "last_seen_at", "user_agent"}

// devicesOf reads a device list answer.
func (p *probe) devicesOf(r *Response) []device {
	raw, ok := r.Body["sessions"].([]any)
	if !ok {
		p.fatalf("GET /sessions: no sessions list in %.200s", r.Raw)
	}
	for _, item := range raw {
		m, _ := item.(map[string]any)
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, deviceFields) {
			p.fatalf("GET /sessions: entry has fields %v, want %v", keys, deviceFields)
		}
	}
	var out struct {
		Sessions []device `json:"sessions"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		p.fatalf("GET /sessions: %v", err)
	}
	return out.Sessions
}

// devices is the caller's device list.
func (p *probe) devices(token string) []device {
	return p.devicesOf(p.do(http.StatusOK, sessionsReq(token)))
}

// wantDevices compares device lists in id order, times with Equal.
func (p *probe) wantDevices(what string, got, want []device) {
	byID := func(x, y device) int { return cmp.Compare(x.ID, y.ID) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) {
		p.fatalf("%s: device list has %d entries %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.CreatedAt.Equal(w.CreatedAt) || !g.LastSeenAt.Equal(w.LastSeenAt) {
			p.fatalf("%s: device %s: created_at %s, last_seen_at %s; want %s, %s", what, g.ID, g.CreatedAt, g.LastSeenAt, w.CreatedAt, w.LastSeenAt)
		}
		g.CreatedAt, g.LastSeenAt, w.CreatedAt, w.LastSeenAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			p.fatalf("%s: device entry %+v, want %+v", what, g, w)
		}
	}
}

// wantDeviceIDs requires the caller's device list to hold exactly ids.
func (p *probe) wantDeviceIDs(what, token string, ids ...string) {
	var got []string
	for _, d := range p.devices(token) {
		got = append(got, d.ID)
	}
	want := slices.Clone(ids)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		p.fatalf("%s: device ids %v, want %v", what, got, want)
	}
}

// rows counts the user's rows that a refused request must not change: live
// refresh tokens, live sessions, and the user row itself.
type rows struct{ refresh, sessions, users int64 }

func (p *probe) rows(uid uint64) rows {
	db := p.e.Server.DB().WithContext(p.ctx)
	var out rows
	for _, c := range []struct {
		model any
		where string
		n     *int64
	}{
		{&models.RefreshToken{}, "user_id = ? AND revoked_at IS NULL", &out.refresh},
		{&models.Session{}, "user_id = ? AND revoked_at IS NULL", &out.sessions},
		{&models.User{}, "id = ?", &out.users},
	} {
		if err := db.Model(c.model).Where(c.where, uid).Count(c.n).Error; err != nil {
			p.fatalf("count rows: %v", err)
		}
	}
	return out
}

// revokedRefresh counts the user's revoked refresh tokens.
func (p *probe) revokedRefresh(uid uint64) int64 {
	var n int64
	if err := p.e.Server.DB().WithContext(p.ctx).Model(&models.RefreshToken{}).
		Where("user_id = ? AND revoked_at IS NOT NULL", uid).Count(&n).Error; err != nil {
		p.fatalf("count refresh tokens: %v", err)
	}
	return n
}
