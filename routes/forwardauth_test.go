package routes_test

// Forward-auth: GET /api/v1/auth/verify is what nginx auth_request, Caddy
// forward_auth and Traefik ForwardAuth call, and some of them send the
// original request's method. Every method must get the very same answer,
// with or without the X-Forwarded-* headers proxies add, and a request body
// must change nothing.

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// forwardAuthMethods are the methods a proxy may send to verify.
var forwardAuthMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// forwardAuthHeaders are the answer headers a proxy acts on or passes on.
var forwardAuthHeaders = []string{"Cache-Control", "WWW-Authenticate", "X-Auth-User-Id", "Content-Type"}

// forwardedHeaders are what Traefik and Caddy add to the verify request.
// They describe the original request; verify must not depend on them.
var forwardedHeaders = map[string]string{
	"X-Forwarded-Method": "DELETE",
	"X-Forwarded-Uri":    "/admin/everything",
	"X-Forwarded-Host":   "other.example.com",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-For":    "203.0.113.9",
}

func TestForwardAuthEveryMethod(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		uid := e.register("fa@example.com")
		old := e.login("fa@example.com", "laptop")
		changed := e.do(http.StatusOK, req{method: "PUT", path: "/api/v1/me/password", token: old.access,
			body: map[string]string{"current_password": password, "new_password": password + "!"}})
		current := e.sessionOf(changed)

		// After a password change every strategy but stateless rejects the
		// older token at once.
		revokedStatus := http.StatusUnauthorized
		if name == "stateless" {
			revokedStatus = http.StatusOK
		}
		const (
			noChallenge      = `Bearer realm="authserver"`
			invalidChallenge = `Bearer realm="authserver", error="invalid_token"`
		)
		cases := []struct {
			name   string
			auth   string // the Authorization header; "" sends none
			status int
			// challenge is the WWW-Authenticate of a 401. RFC 6750 §3.1: a
			// request without credentials gets no error code.
			challenge string
		}{
			{"valid", "Bearer " + current.access, http.StatusOK, ""},
			{"missing", "", http.StatusUnauthorized, noChallenge},
			{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized, invalidChallenge},
			{"other scheme", "Basic " + current.access, http.StatusUnauthorized, invalidChallenge},
			{"revoked", "Bearer " + old.access, revokedStatus, invalidChallenge},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := e.apiBind(t)
				send := func(method string, body any, extra map[string]string) *resp {
					h := map[string]string{}
					if tc.auth != "" {
						h["Authorization"] = tc.auth
					}
					for k, v := range extra {
						h[k] = v
					}
					return e.send(req{method: method, path: "/api/v1/auth/verify", body: body, header: h})
				}

				// The reference: a plain GET with no X-Forwarded-* header.
				ref := send(http.MethodGet, nil, nil)
				if ref.Code != tc.status {
					t.Fatalf("GET: status %d, want %d: %s", ref.Code, tc.status, ref.Raw)
				}
				if got := ref.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("GET: Cache-Control %q, want no-store", got)
				}
				switch tc.status {
				case http.StatusOK:
					if got := ref.Header.Get("X-Auth-User-Id"); got != uid {
						t.Errorf("GET: X-Auth-User-Id %q, want %q", got, uid)
					}
					if got := ref.str("sub"); got != uid {
						t.Errorf("GET: sub %q, want %q", got, uid)
					}
					if ref.Header.Get("WWW-Authenticate") != "" {
						t.Errorf("GET: a 200 with WWW-Authenticate %q", ref.Header.Get("WWW-Authenticate"))
					}
				default:
					if got := ref.Header.Get("WWW-Authenticate"); got != tc.challenge {
						t.Errorf("GET: WWW-Authenticate %q, want %q", got, tc.challenge)
					}
					if got := ref.Header.Values("X-Auth-User-Id"); len(got) != 0 {
						t.Errorf("GET: a %d with X-Auth-User-Id %q", ref.Code, got)
					}
				}

				for _, m := range forwardAuthMethods {
					variants := []struct {
						name  string
						body  any
						extra map[string]string
					}{
						{"plain", nil, nil},
						{"X-Forwarded-*", nil, forwardedHeaders},
						{"with a body", `{"active":true,"sub":"1"}`, nil},
					}
					for _, v := range variants {
						got := send(m, v.body, v.extra)
						what := m + " " + v.name
						if got.Code != ref.Code {
							t.Errorf("%s: status %d, GET got %d: %s", what, got.Code, ref.Code, got.Raw)
							continue
						}
						for _, h := range forwardAuthHeaders {
							if g, w := strings.Join(got.Header.Values(h), "|"), strings.Join(ref.Header.Values(h), "|"); g != w {
								t.Errorf("%s: %s %q, GET got %q", what, h, g, w)
							}
						}
						// The recorder keeps what a HEAD handler writes;
						// the real server drops it (checked on the binary
						// in deploy/).
						if m != http.MethodHead && !sameAnswer(got, ref) {
							t.Errorf("%s: body %s, GET got %s", what, got.Raw, ref.Raw)
						}
					}
				}
			})
		}
	})
}

// sameAnswer reports whether two answers have the same body, but for the
// request id every error carries.
func sameAnswer(a, b *resp) bool {
	strip := func(body map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range body {
			out[k] = v
		}
		if e, ok := body["error"].(map[string]any); ok {
			inner := map[string]any{}
			for k, v := range e {
				if k != "request_id" {
					inner[k] = v
				}
			}
			out["error"] = inner
		}
		return out
	}
	return len(a.Raw) > 0 && reflect.DeepEqual(strip(a.Body), strip(b.Body))
}
