package demo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/demo"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

var testSecret = []byte("demo-test-secret-demo-test-secret-0123456789")

// server is one strategy's API with the state endpoint mounted as the
// demo command mounts it.
type server struct {
	db *gorm.DB
	h  http.Handler
}

func newServer(t *testing.T, driver, name string) *server {
	t.Helper()
	db := dbtest.Open(t, driver)
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.Demo.Enabled = true
	srv, err := authserver.New(context.Background(), authserver.Options{Config: cfg, DB: db, Secret: testSecret, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &server{db: db, h: srv.Handler()}
}

// do sends one request and decodes the JSON answer, if any.
func (s *server) do(t *testing.T, method, path, token string, body any) (int, map[string]any, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Body.String()
}

// login registers email (once) and signs in a device; it returns the
// access token and its login id.
func (s *server) login(t *testing.T, email, device string) (token, sid string) {
	t.Helper()
	code, _, _ := s.do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{"email": email, "password": "correct horse"})
	if code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("register %s: %d", email, code)
	}
	code, out, body := s.do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse", "device_name": device})
	if code != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, code, body)
	}
	token, _ = out["access_token"].(string)
	code, v, _ := s.do(t, http.MethodGet, "/api/v1/auth/verify", token, nil)
	if code != http.StatusOK {
		t.Fatalf("verify: %d", code)
	}
	sid, _ = v["sid"].(string)
	return token, sid
}

// state reads the state endpoint with token and decodes it.
func (s *server) state(t *testing.T, token string) demo.State {
	t.Helper()
	code, _, body := s.do(t, http.MethodGet, "/api/v1/demo/state", token, nil)
	if code != http.StatusOK {
		t.Fatalf("state: %d %s", code, body)
	}
	var st demo.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestStateRejectsMissingAndBadTokens(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			s := newServer(t, driver, "password_key")
			alice, _ := s.login(t, "alice@example.com", "laptop")
			for _, tc := range []struct {
				name, header string
				code         string
			}{
				{"no header", "", "token_missing"},
				{"not bearer", "Basic YWxpY2U6cHc=", "token_invalid"},
				{"empty bearer", "Bearer ", "token_invalid"},
				{"garbage", "Bearer not.a.jwt", "token_invalid"},
				{"tampered", "Bearer " + alice[:len(alice)-2] + "xx", "token_invalid"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					req := httptest.NewRequest(http.MethodGet, "/api/v1/demo/state", nil)
					if tc.header != "" {
						req.Header.Set("Authorization", tc.header)
					}
					rec := httptest.NewRecorder()
					s.h.ServeHTTP(rec, req)
					var out map[string]any
					_ = json.Unmarshal(rec.Body.Bytes(), &out)
					if rec.Code != http.StatusUnauthorized || errorCode(out) != tc.code {
						t.Fatalf("%d %s, want 401 %s", rec.Code, rec.Body.String(), tc.code)
					}
					if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
						t.Error("no WWW-Authenticate: Bearer")
					}
					if strings.Contains(rec.Body.String(), "alice") {
						t.Error("a rejected request shows account data")
					}
				})
			}
			t.Run("POST", func(t *testing.T) {
				// Like every route of the API, another method is not found.
				code, _, _ := s.do(t, http.MethodPost, "/api/v1/demo/state", alice, map[string]string{})
				if code != http.StatusNotFound {
					t.Fatalf("POST = %d, want 404", code)
				}
			})
		})
	}
}

// TestStateShowsOnlyTheCallersAccount: two users, each sees their own row,
// sessions and refresh families, and no parameter can change whose.
func TestStateShowsOnlyTheCallersAccount(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		for _, name := range strategy.Names() {
			t.Run(driver+"/"+name, func(t *testing.T) {
				s := newServer(t, driver, name)
				alice, aliceSID := s.login(t, "alice@example.com", "alice-laptop")
				bob, bobSID := s.login(t, "bob@example.com", "bob-phone")
				var bobRow models.User
				if err := s.db.Take(&bobRow, "email = ?", "bob@example.com").Error; err != nil {
					t.Fatal(err)
				}
				for _, path := range []string{
					"/api/v1/demo/state",
					"/api/v1/demo/state?user_id=" + itoa(bobRow.ID) + "&email=bob@example.com",
				} {
					code, _, body := s.do(t, http.MethodGet, path, alice, nil)
					if code != http.StatusOK {
						t.Fatalf("%s: %d %s", path, code, body)
					}
					if strings.Contains(body, "bob") || strings.Contains(body, bobSID) {
						t.Errorf("%s with alice's token shows bob's data: %s", path, body)
					}
					if !strings.Contains(body, aliceSID) {
						t.Errorf("%s: alice's own login %s is missing: %s", path, aliceSID, body)
					}
				}
				st := s.state(t, bob)
				if st.User.Email != "bob@example.com" || st.User.ID != itoa(bobRow.ID) || st.Strategy != name {
					t.Errorf("bob's state: %+v", st.User)
				}
				for _, f := range st.RefreshFamilies {
					if f.FamilyID != bobSID {
						t.Errorf("bob's state lists family %s", f.FamilyID)
					}
				}
				for _, r := range st.Sessions {
					if r.ID != bobSID {
						t.Errorf("bob's state lists session %s", r.ID)
					}
				}
			})
		}
	}
}

// TestStateNeverShowsSecrets: the salt and the password hash appear only
// as fingerprints, the refresh token and its hash not at all.
func TestStateNeverShowsSecrets(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			s := newServer(t, driver, "session_table")
			_, _, _ = s.do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{"email": "ann@example.com", "password": "correct horse"})
			code, out, _ := s.do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "ann@example.com", "password": "correct horse"})
			if code != http.StatusOK {
				t.Fatalf("login: %d", code)
			}
			access, _ := out["access_token"].(string)
			refresh, _ := out["refresh_token"].(string)
			var u models.User
			if err := s.db.Take(&u, "email = ?", "ann@example.com").Error; err != nil {
				t.Fatal(err)
			}
			var rt models.RefreshToken
			if err := s.db.Take(&rt, "user_id = ?", u.ID).Error; err != nil {
				t.Fatal(err)
			}
			_, _, body := s.do(t, http.MethodGet, "/api/v1/demo/state", access, nil)
			for what, secret := range map[string]string{
				"password hash":          u.PasswordHash,
				"key salt (hex)":         hex.EncodeToString(u.KeySalt),
				"key salt (base64)":      base64.StdEncoding.EncodeToString(u.KeySalt),
				"key salt (base64url)":   base64.RawURLEncoding.EncodeToString(u.KeySalt),
				"refresh token":          refresh,
				"refresh hash (hex)":     hex.EncodeToString(rt.TokenHash),
				"refresh hash (base64)":  base64.StdEncoding.EncodeToString(rt.TokenHash),
				"access token signature": access[strings.LastIndex(access, ".")+1:],
			} {
				if strings.Contains(body, secret) {
					t.Errorf("the state shows the %s", what)
				}
			}
			st := s.state(t, access)
			salt := sha256.Sum256(u.KeySalt)
			hash := sha256.Sum256([]byte(u.PasswordHash))
			if st.User.KeySaltFingerprint != hex.EncodeToString(salt[:4]) || st.User.PasswordHashFingerprint != hex.EncodeToString(hash[:4]) {
				t.Errorf("fingerprints %q %q", st.User.KeySaltFingerprint, st.User.PasswordHashFingerprint)
			}
		})
	}
}

// TestStateFollowsTheStrategy: after a second login and a logout (or a
// logout-all), the endpoint shows the state the strategy checks, as it is
// in the database.
func TestStateFollowsTheStrategy(t *testing.T) {
	type run struct {
		s                 *server
		first, second     string // tokens
		firstID, secondID string // login ids
	}
	for _, tc := range []struct {
		name   string
		checks []string
		// act changes the state; check inspects it, read with a token that
		// is still valid afterwards.
		act   func(t *testing.T, r *run) (reader string)
		check func(t *testing.T, r *run, before, after demo.State)
	}{
		{
			name:   "stateless",
			checks: []string{},
			act: func(t *testing.T, r *run) string {
				mustStatus(t, r.s, http.MethodPost, "/api/v1/auth/logout", r.first, http.StatusNoContent)
				return r.first // still valid: that is stateless
			},
			check: func(t *testing.T, r *run, _, after demo.State) {
				fam := family(after, r.firstID)
				if fam == nil || fam.RevokedAt == nil {
					t.Errorf("the logged-out login's refresh family is not revoked: %+v", after.RefreshFamilies)
				}
				if f := family(after, r.secondID); f == nil || f.RevokedAt != nil {
					t.Errorf("the other login's family: %+v", f)
				}
			},
		},
		{
			name:   "password_key",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint"},
			act: func(t *testing.T, r *run) string {
				code, out, _ := r.s.do(t, http.MethodPost, "/api/v1/auth/logout-others", r.second, nil)
				if code != http.StatusOK {
					t.Fatalf("logout-others: %d", code)
				}
				tok, _ := out["access_token"].(string)
				return tok
			},
			check: func(t *testing.T, _ *run, before, after demo.State) {
				if before.User.KeySaltFingerprint == after.User.KeySaltFingerprint {
					t.Error("logout-others did not change the key salt's fingerprint")
				}
				if before.User.PasswordHashFingerprint != after.User.PasswordHashFingerprint {
					t.Error("the password hash changed")
				}
			},
		},
		{
			name:   "single_device",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint", "state"},
			act:    func(*testing.T, *run) string { return "" },
			check: func(t *testing.T, r *run, _, after demo.State) {
				if after.User.State != r.secondID {
					t.Errorf("state %q, want the last login %q", after.User.State, r.secondID)
				}
				if _, ok := after.User.Devices[r.secondID]; !ok || len(after.User.Devices) != 1 {
					t.Errorf("devices %v, want only the last login", after.User.Devices)
				}
			},
		},
		{
			name:   "multi_device",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint", "devices"},
			act: func(t *testing.T, r *run) string {
				mustStatus(t, r.s, http.MethodPost, "/api/v1/auth/logout", r.first, http.StatusNoContent)
				return r.second
			},
			check: func(t *testing.T, r *run, before, after demo.State) {
				if len(before.User.Devices) != 2 {
					t.Errorf("before: devices %v, want both logins", before.User.Devices)
				}
				if d, ok := after.User.Devices[r.secondID]; !ok || len(after.User.Devices) != 1 || d.Name != "phone" {
					t.Errorf("after logout: devices %v, want only the phone", after.User.Devices)
				}
			},
		},
		{
			name:   "valid_date",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint", "valid_after_micros"},
			act: func(t *testing.T, r *run) string {
				code, out, _ := r.s.do(t, http.MethodPost, "/api/v1/auth/logout-others", r.second, nil)
				if code != http.StatusOK {
					t.Fatalf("logout-others: %d", code)
				}
				tok, _ := out["access_token"].(string)
				return tok
			},
			check: func(t *testing.T, _ *run, before, after demo.State) {
				if before.User.ValidAfterMicros != 0 || after.User.ValidAfterMicros <= 0 {
					t.Errorf("cutoff %d -> %d, want 0 -> a time", before.User.ValidAfterMicros, after.User.ValidAfterMicros)
				}
			},
		},
		{
			name:   "token_version",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint", "token_version"},
			act: func(t *testing.T, r *run) string {
				code, out, _ := r.s.do(t, http.MethodPost, "/api/v1/auth/logout-others", r.second, nil)
				if code != http.StatusOK {
					t.Fatalf("logout-others: %d", code)
				}
				tok, _ := out["access_token"].(string)
				return tok
			},
			check: func(t *testing.T, _ *run, before, after demo.State) {
				if after.User.TokenVersion != before.User.TokenVersion+1 {
					t.Errorf("token_version %d -> %d, want +1", before.User.TokenVersion, after.User.TokenVersion)
				}
			},
		},
		{
			name:   "session_table",
			checks: []string{"key_salt_fingerprint", "password_hash_fingerprint", "sessions"},
			act: func(t *testing.T, r *run) string {
				mustStatus(t, r.s, http.MethodPost, "/api/v1/auth/logout", r.first, http.StatusNoContent)
				return r.second
			},
			check: func(t *testing.T, r *run, _, after demo.State) {
				if len(after.Sessions) != 2 {
					t.Fatalf("sessions %+v, want both rows", after.Sessions)
				}
				for _, row := range after.Sessions {
					revoked := row.RevokedAt != nil
					if revoked != (row.ID == r.firstID) {
						t.Errorf("session %s (%s): revoked %v", row.ID, row.DeviceName, revoked)
					}
					if row.ExpiresAt.Before(row.CreatedAt) {
						t.Errorf("session %s expires before it starts", row.ID)
					}
				}
			},
		},
	} {
		for _, driver := range dbtest.Drivers() {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				s := newServer(t, driver, tc.name)
				r := &run{s: s}
				r.first, r.firstID = s.login(t, "ann@example.com", "laptop")
				r.second, r.secondID = s.login(t, "ann@example.com", "phone")
				before := s.state(t, r.second)
				if !slices.Equal(before.Checks, tc.checks) {
					t.Errorf("checks %v, want %v", before.Checks, tc.checks)
				}
				reader := tc.act(t, r)
				if reader == "" {
					reader = r.second
				}
				tc.check(t, r, before, s.state(t, reader))
			})
		}
	}
}

// TestStateOfADeletedAccount: under stateless the token of a deleted
// account still verifies, but there is no state to show: 401, as /me.
func TestStateOfADeletedAccount(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			s := newServer(t, driver, "stateless")
			tok, _ := s.login(t, "ann@example.com", "laptop")
			mustStatusBody(t, s, http.MethodDelete, "/api/v1/me", tok, map[string]string{"password": "correct horse"}, http.StatusNoContent)
			mustStatus(t, s, http.MethodGet, "/api/v1/auth/verify", tok, http.StatusOK)
			code, out, _ := s.do(t, http.MethodGet, "/api/v1/demo/state", tok, nil)
			if code != http.StatusUnauthorized || errorCode(out) != "token_invalid" {
				t.Fatalf("state of a deleted account: %d %v, want 401 token_invalid", code, out)
			}
		})
	}
}

// TestStateFailsClosed: with the database gone the endpoint answers 503,
// whether verification needed the database (password_key) or not
// (stateless).
func TestStateFailsClosed(t *testing.T) {
	for _, name := range []string{"stateless", "password_key"} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, "sqlite", name)
			tok, _ := s.login(t, "ann@example.com", "laptop")
			sqlDB, err := s.db.DB()
			if err != nil {
				t.Fatal(err)
			}
			_ = sqlDB.Close()
			code, out, _ := s.do(t, http.MethodGet, "/api/v1/demo/state", tok, nil)
			if code != http.StatusServiceUnavailable || errorCode(out) != "service_unavailable" {
				t.Fatalf("with the database closed: %d %v, want 503 service_unavailable", code, out)
			}
		})
	}
}

func family(st demo.State, id string) *demo.RefreshGroup {
	for i := range st.RefreshFamilies {
		if st.RefreshFamilies[i].FamilyID == id {
			return &st.RefreshFamilies[i]
		}
	}
	return nil
}

func mustStatus(t *testing.T, s *server, method, path, token string, want int) {
	t.Helper()
	mustStatusBody(t, s, method, path, token, nil, want)
}

func mustStatusBody(t *testing.T, s *server, method, path, token string, body any, want int) {
	t.Helper()
	if code, _, b := s.do(t, method, path, token, body); code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
