package routes_test

// Fuzz targets through the real router on SQLite: arbitrary Authorization
// headers into GET /auth/verify and arbitrary bodies into POST
// /auth/refresh. The seeds are the hostile inputs of security_test.go and
// refresh_test.go. `go test` runs the seeds; .ci/fuzz fuzzes.

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/strategy"
)

// fuzzErrorCodes are the codes each endpoint may answer with.
var (
	fuzzVerifyCodes  = map[string]bool{"token_missing": true, "token_invalid": true, "token_expired": true, "token_revoked": true}
	fuzzRefreshCodes = map[string]bool{
		"invalid_request": true, "request_too_large": true, "token_invalid": true, "token_expired": true,
		"token_revoked": true, "refresh_token_reused": true,
	}
)

// fuzzCheckError fails unless r is an error in the one envelope, with a
// code of the set. leaks: check the message names no internals (not for
// 400s, whose message may quote a field name the client sent).
func fuzzCheckError(t *testing.T, what string, r *resp, codes map[string]bool, leaks bool) {
	t.Helper()
	if !codes[r.errCode()] {
		t.Fatalf("%s: %d with code %q: %s", what, r.Code, r.errCode(), r.Raw)
	}
	if leaks {
		apiCheckErrorBody(t, what, r)
		return
	}
	var env struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Error == nil || env.Error.Message == "" || env.Error.RequestID == "" {
		t.Fatalf("%s: body %s is not the error envelope (%v)", what, r.Raw, err)
	}
}

// fuzzPaddingBits changes the two unused low bits of the signature's last
// base64url character: another spelling of the same signature bytes, which
// a strict decoder refuses: the server's parser decodes strictly
// (jwt.WithStrictDecoding), so it is refused.
func fuzzPaddingBits(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[i^1])
}

// fuzzSameToken reports whether got is the token want. Only the exact
// spelling counts: the parser decodes base64url strictly, so another
// spelling of the same signature bytes (fuzzPaddingBits) is refused.
func fuzzSameToken(got, want string) bool { return got == want }

// FuzzVerifyAuthorization: whatever the Authorization header says, verify
// answers 200 only for the real token after a Bearer scheme, otherwise
// 401 in the error envelope; never a 5xx.
func FuzzVerifyAuthorization(f *testing.F) {
	e := newEnv(f, "sqlite", "password_key")
	aID := e.register(email(1))
	e.register(email(2))
	a, b := e.login(email(1), "a"), e.login(email(2), "b")
	key := secKey(e, aID)
	base := secClaims(f, a.access)
	now := e.clock.Now()
	past := float64(now.Add(-time.Hour).Unix())
	future := float64(now.Add(time.Hour).Unix())
	hs256 := func(c map[string]any) string { return secSign(f, "HS256", sha256.New, key, c) }

	for _, tok := range []string{
		secSign(f, "none", nil, nil, base),
		secSign(f, "None", nil, nil, base),
		secSign(f, "none", nil, nil, base) + strings.Split(a.access, ".")[2],
		secSign(f, "HS384", sha512.New384, key, base),
		secSign(f, "HS512", sha512.New, key, base),
		secSign(f, "RS256", sha256.New, key, base),
		secSplice(f, b.access, secWith(secClaims(f, b.access), map[string]any{"sub": aID})),
		secSplice(f, b.access, base),
		secTamper(a.access),
		secSign(f, "HS256", sha256.New, []byte(strings.Repeat("k", 32)), base),
		hs256(secWith(base, map[string]any{"iss": "someone-else"})),
		hs256(secWith(base, map[string]any{"aud": nil})),
		hs256(secWith(base, map[string]any{"exp": nil})),
		hs256(secWith(base, map[string]any{"sid": nil})),
		hs256(secWith(base, map[string]any{"sub": "admin"})),
		hs256(secWith(base, map[string]any{"sub": "0"})),
		hs256(secWith(base, map[string]any{"iat": future, "exp": future + 900})),
		hs256(secWith(base, map[string]any{"iat": past - 900, "exp": past})),
		hs256(secWith(base, map[string]any{"pad": strings.Repeat("x", 3200)})),
		a.refresh,
		"not-a-token",
		"..",
		"a.b.c",
	} {
		f.Add("Bearer " + tok)
	}
	for _, h := range []string{
		"Bearer " + a.access, "bearer " + a.access, "BEARER  " + a.access + " ", "",
		"Basic dXNlcjpwYXNzd29yZA==", "Token " + a.access, a.access, "Bearer", "Bearer ",
		"Bearer " + a.access + " " + a.access, "Bearer\t" + a.access, "Bearer " + b.access + "x",
		"Bearer " + fuzzPaddingBits(a.access),
	} {
		f.Add(h)
	}

	f.Fuzz(func(t *testing.T, header string) {
		e := e.apiBind(t)
		r := e.send(req{method: "GET", path: "/api/v1/auth/verify", header: map[string]string{"Authorization": header}})
		scheme, raw, _ := strings.Cut(header, " ")
		raw = strings.TrimSpace(raw)
		real := strings.EqualFold(scheme, "Bearer") && (fuzzSameToken(raw, a.access) || fuzzSameToken(raw, b.access))
		switch r.Code {
		case http.StatusOK:
			if !real {
				t.Fatalf("Authorization %q: verify answered 200 %s", header, r.Raw)
			}
			if sub := r.str("sub"); sub == "" || r.Body["active"] != true {
				t.Fatalf("Authorization %q: 200 without a subject: %s", header, r.Raw)
			}
		case http.StatusUnauthorized:
			if real {
				t.Fatalf("Authorization %q carries a real token, yet 401 %s", header, r.Raw)
			}
			fuzzCheckError(t, "verify", r, fuzzVerifyCodes, true)
		default:
			t.Fatalf("Authorization %q: status %d %s, want 200 or 401", header, r.Code, r.Raw)
		}
	})
}

// FuzzRefreshBody: whatever the body, refresh answers 200 only for the
// login's real refresh token, otherwise 400/401/413 in the error envelope;
// never a 5xx. The test clock stands still, so the real token stays within
// its reuse grace and keeps answering 200.
func FuzzRefreshBody(f *testing.F) {
	e := newEnv(f, "sqlite", "password_key")
	e.register(email(1))
	s := e.login(email(1), "phone")
	body := func(v any) []byte {
		j, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return j
	}
	good := `"refresh_token":"` + s.refresh + `"`
	for _, b := range [][]byte{
		nil,
		body(map[string]string{}),
		body(map[string]string{"refresh_token": ""}),
		[]byte("refresh_token=x"),
		body(map[string]string{"token": "x"}),
		body(map[string]int{"refresh_token": 1}),
		body(map[string]string{"refresh_token": "garbage"}),
		body(map[string]string{"refresh_token": strategy.NewSecret(32)}),
		body(map[string]string{"refresh_token": strings.Repeat("a", 129)}),
		body(map[string]string{"refresh_token": strings.Repeat("a", 4096)}),
		body(map[string]string{"refresh_token": s.access}),
		[]byte("{" + good + "}"),
		[]byte("{" + good + "," + good + "}"),
		[]byte("{" + good + "}{}"),
		[]byte("{" + good + "} x"),
		[]byte("[{" + good + "}]"),
		[]byte(`{"Refresh_Token":"` + s.refresh + `"}`),
		[]byte(`{"refresh_token":"` + s.refresh + `","REFRESH_TOKEN":"x"}`),
		[]byte(`null`),
		[]byte(`"x"`),
	} {
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		e := e.apiBind(t)
		r := e.send(req{method: "POST", path: "/api/v1/auth/refresh", body: b})
		var sent struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.Unmarshal(b, &sent)
		switch r.Code {
		case http.StatusOK:
			if sent.RefreshToken != s.refresh {
				t.Fatalf("body %q: refresh answered 200 %s", b, r.Raw)
			}
			if r.str("access_token") == "" || r.str("refresh_token") == "" {
				t.Fatalf("body %q: 200 without tokens: %s", b, r.Raw)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			fuzzCheckError(t, "refresh", r, fuzzRefreshCodes, false)
		case http.StatusUnauthorized:
			fuzzCheckError(t, "refresh", r, fuzzRefreshCodes, true)
		default:
			t.Fatalf("body %q: status %d %s, want 200, 400, 401 or 413", b, r.Code, r.Raw)
		}
	})
}
