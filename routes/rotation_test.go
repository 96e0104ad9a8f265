package routes_test

// Rotating the server secret, through the router: three servers on one
// database play one deployment before the rotation (secret A), after it
// (B active, A previous) and after A was dropped (B alone).

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

var (
	secretA = []byte("rotation-secret-A-rotation-secret-A-0123456789")
	secretB = []byte("rotation-secret-B-rotation-secret-B-0123456789")
)

// kidOf reads the kid header of a token.
func kidOf(t testing.TB, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// withKid returns token with its kid header replaced (the signature no
// longer matches the header).
func withKid(t testing.TB, token, kid string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	h["kid"] = kid
	nb, _ := json.Marshal(h)
	parts[0] = base64.RawURLEncoding.EncodeToString(nb)
	return strings.Join(parts, ".")
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	matrix(t, func(t *testing.T, driver, name string) {
		cfg := config.Defaults()
		cfg.Strategy = name
		cfg.Password.BcryptCost = 4
		cfg.NoLimits()
		db := dbtest.Open(t, driver)
		clk := newClock()
		mailer := &mailbox.Mailbox{}
		server := func(secret []byte, previous ...[]byte) *env {
			srv := startServer(t, authserver.Options{Config: cfg, DB: db, Secret: secret, PreviousSecrets: previous, Log: quietLog(), Mailer: mailer, Now: clk.Now})
			return &env{t: t, driver: driver, name: name, cfg: cfg, db: db, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: clk, mailer: mailer}
		}
		const ann = "ann@example.com"
		before := server(secretA)
		before.register(ann)
		// Two logins under A: one refreshed after the rotation, one after A
		// was dropped.
		old := before.login(ann, "before")
		if kidOf(t, old.access) != strategy.KeyID(secretA) {
			t.Fatalf("kid %q, want the key id of A %q", kidOf(t, old.access), strategy.KeyID(secretA))
		}
		other := tokensOf(t, before.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": old.refresh}}))

		rotated := server(secretB, secretA)
		t.Run("a token signed under the previous secret verifies", func(t *testing.T) {
			rotated.wantVerify("token of A after the rotation", old.access, http.StatusOK)
		})
		var fresh session
		t.Run("refresh tokens keep working across the rotation", func(t *testing.T) {
			fresh = tokensOf(t, rotated.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": other.refresh}}))
			if kidOf(t, fresh.access) != strategy.KeyID(secretB) {
				t.Fatalf("a token issued after the rotation has kid %q, want B's %q", kidOf(t, fresh.access), strategy.KeyID(secretB))
			}
			rotated.wantVerify("refreshed token", fresh.access, http.StatusOK)
		})

		dropped := server(secretB)
		t.Run("after the old secret is dropped its tokens are rejected", func(t *testing.T) {
			r := dropped.send(req{method: "GET", path: "/api/v1/auth/verify", token: old.access})
			if r.Code != http.StatusUnauthorized || r.errCode() != "token_invalid" {
				t.Fatalf("token of A without A: %d %s, want 401 token_invalid", r.Code, r.Raw)
			}
			dropped.wantVerify("token of B", fresh.access, http.StatusOK)
		})
		t.Run("refresh tokens keep working after the drop", func(t *testing.T) {
			next := tokensOf(t, dropped.do(http.StatusOK, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": fresh.refresh}}))
			dropped.wantVerify("refreshed after the drop", next.access, http.StatusOK)
		})

		// Changing the header breaks the signature too, so this shows only
		// that odd kids are refused cleanly (401 token_invalid, never a
		// 5xx); the stateless case below signs under an unknown kid.
		t.Run("a token with a changed kid is refused cleanly", func(t *testing.T) {
			for _, kid := range []string{"forged", strategy.KeyID(secretA), "", strings.Repeat("k", 200)} {
				r := dropped.send(req{method: "GET", path: "/api/v1/auth/verify", token: withKid(t, fresh.access, kid)})
				if r.Code != http.StatusUnauthorized || r.errCode() != "token_invalid" {
					t.Errorf("kid %.20q: %d %s, want 401 token_invalid", kid, r.Code, r.Raw)
				}
			}
		})

		if name == "stateless" {
			// Under stateless the signing key is the secret itself, so a
			// test can sign: a token signed with the right key under a kid
			// the server does not know is rejected, not tried against
			// every key.
			t.Run("a correctly signed token under an unknown kid is rejected", func(t *testing.T) {
				sign := func(key []byte, kid string) string {
					now := clk.Now()
					c := strategy.Claims{RegisteredClaims: jwt.RegisteredClaims{
						Subject: strconv.Itoa(1), Issuer: cfg.JWT.Issuer, Audience: jwt.ClaimStrings{cfg.JWT.Audience},
						IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "forged-jti",
					}, SID: "forged-sid"}
					tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
					tok.Header["kid"] = kid
					s, err := tok.SignedString(key)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				rotated.wantVerify("signed with B under B's kid (the control)", sign(secretB, strategy.KeyID(secretB)), http.StatusOK)
				rotated.wantVerify("signed with B under an unknown kid", sign(secretB, "forged"), http.StatusUnauthorized)
				rotated.wantVerify("signed with B under A's kid", sign(secretB, strategy.KeyID(secretA)), http.StatusUnauthorized)
				dropped.wantVerify("signed with A under A's kid, A dropped", sign(secretA, strategy.KeyID(secretA)), http.StatusUnauthorized)
			})
		}
	})
}
