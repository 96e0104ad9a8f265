package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// VerifyFunc checks a bearer access token under the running strategy and
// returns the id of its user. In the server it wraps
// (*strategy.Service).Verify; its errors are the strategy package's.
type VerifyFunc func(ctx context.Context, token string) (uid uint64, err error)

// Bounds on what one answer reads: a demo account has a handful of logins,
// and a bug or a scripted client must not make the endpoint read a table.
const (
	maxSessionRows = 50
	maxRefreshRows = 500
)

// StateHandler answers GET with what the named strategy stores about the
// caller's account, the state a token is checked against: the strategy
// columns of the user row, the session rows under session_table, and the
// refresh-token families that every strategy keeps. The caller is the user
// of the bearer token; there is no parameter to ask about anyone else.
//
// It exists for the demo only (register it where the demo is enabled): a
// production server has no reason to show its bookkeeping. Secrets never
// leave it: the key salt and the password hash appear only as fingerprints
// (the first 8 hex digits of their SHA-256), enough to see them change.
func StateHandler(db *gorm.DB, strategyName string, verify VerifyFunc) (http.Handler, error) {
	if db == nil || verify == nil {
		return nil, errors.New("demo: state handler needs a database and a verify function")
	}
	if !slices.Contains(strategy.Names(), strategyName) {
		return nil, fmt.Errorf("demo: unknown strategy %q", strategyName)
	}
	return &stateHandler{db: db, name: strategyName, verify: verify}, nil
}

type stateHandler struct {
	db     *gorm.DB
	name   string
	verify VerifyFunc
}

// State is the answer of the state endpoint.
type State struct {
	Strategy string `json:"strategy"`
	// Checks names the fields that verifying an access token compares
	// against under this strategy; the others are stored but unused by it.
	Checks          []string       `json:"checks"`
	User            UserState      `json:"user"`
	Sessions        []SessionRow   `json:"sessions"`
	RefreshFamilies []RefreshGroup `json:"refresh_families"`
}

// UserState is the caller's user row, reduced to what the strategies use.
type UserState struct {
	ID                      string                 `json:"id"`
	Email                   string                 `json:"email"`
	KeySaltFingerprint      string                 `json:"key_salt_fingerprint"`
	PasswordHashFingerprint string                 `json:"password_hash_fingerprint"`
	State                   string                 `json:"state"`
	Devices                 map[string]DeviceEntry `json:"devices"`
	ValidAfterMicros        int64                  `json:"valid_after_micros"`
	TokenVersion            int64                  `json:"token_version"`
}

// DeviceEntry is one entry of the user row's device map.
type DeviceEntry struct {
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// SessionRow is one row of session_table's sessions table.
type SessionRow struct {
	ID         string     `json:"id"`
	DeviceName string     `json:"device_name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// RefreshGroup summarizes one login's refresh-token family. The token
// hashes stay in the database.
type RefreshGroup struct {
	FamilyID   string     `json:"family_id"`
	DeviceName string     `json:"device_name"`
	Tokens     int        `json:"tokens"`
	Spent      int        `json:"spent"`
	LastIssued time.Time  `json:"last_issued_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// checks lists the fields each strategy's verification compares. Every
// strategy but stateless signs with a key derived from the password hash
// and the key salt, so those two are checked by the signature itself.
func checks(name string) []string {
	key := []string{"key_salt_fingerprint", "password_hash_fingerprint"}
	switch name {
	case "stateless":
		return []string{}
	case "single_device":
		return append(key, "state")
	case "multi_device":
		return append(key, "devices")
	case "valid_date":
		return append(key, "valid_after_micros")
	case "token_version":
		return append(key, "token_version")
	case "session_table":
		return append(key, "sessions")
	default:
		return key
	}
}

func (h *stateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		writeError(w, http.StatusUnauthorized, "token_missing", "an Authorization: Bearer token is required")
		return
	}
	raw, ok := bearer(header)
	if !ok {
		writeError(w, http.StatusUnauthorized, "token_invalid", "the token is invalid")
		return
	}
	uid, err := h.verify(r.Context(), raw)
	if err != nil {
		writeVerifyError(w, err)
		return
	}
	st, err := h.load(r.Context(), uid)
	if err != nil {
		writeVerifyError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// bearer extracts the token of an "Authorization: Bearer ..." header, as
// the API's authentication middleware does.
func bearer(h string) (string, bool) {
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	raw = strings.TrimSpace(raw)
	return raw, raw != ""
}

// load reads the state of user uid. A user that is gone (deleted while a
// stateless token still verifies) is ErrTokenInvalid, as in /me.
func (h *stateHandler) load(ctx context.Context, uid uint64) (*State, error) {
	db := h.db.WithContext(ctx)
	var u models.User
	if err := db.Take(&u, "id = ?", uid).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, strategy.ErrTokenInvalid
		}
		return nil, models.Unavailable("load user", err)
	}
	st := &State{
		Strategy: h.name,
		Checks:   checks(h.name),
		User: UserState{
			ID: strconv.FormatUint(u.ID, 10), Email: u.Email,
			KeySaltFingerprint:      fingerprint(u.KeySalt),
			PasswordHashFingerprint: fingerprint([]byte(u.PasswordHash)),
			State:                   u.State,
			Devices:                 map[string]DeviceEntry{},
			ValidAfterMicros:        u.ValidAfterMicros,
			TokenVersion:            u.TokenVersion,
		},
		Sessions:        []SessionRow{},
		RefreshFamilies: []RefreshGroup{},
	}
	for id, d := range u.Devices {
		st.User.Devices[id] = DeviceEntry{Name: d.Name, CreatedAt: d.CreatedAt.UTC(), LastSeenAt: d.LastSeenAt.UTC()}
	}

	var sessions []models.Session
	if err := db.Where("user_id = ?", uid).Order("created_at DESC").Limit(maxSessionRows).Find(&sessions).Error; err != nil {
		return nil, models.Unavailable("load sessions", err)
	}
	for _, s := range sessions {
		st.Sessions = append(st.Sessions, SessionRow{
			ID: s.ID, DeviceName: s.DeviceName, CreatedAt: s.CreatedAt.UTC(),
			LastSeenAt: s.LastSeenAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(), RevokedAt: utc(s.RevokedAt),
		})
	}

	var rows []models.RefreshToken
	if err := db.Where("user_id = ?", uid).Order("id DESC").Limit(maxRefreshRows).Find(&rows).Error; err != nil {
		return nil, models.Unavailable("load refresh tokens", err)
	}
	st.RefreshFamilies = families(rows)
	return st, nil
}

// families groups refresh tokens by login, newest login first.
func families(rows []models.RefreshToken) []RefreshGroup {
	byID := map[string]*RefreshGroup{}
	var order []*RefreshGroup
	for _, t := range rows {
		g := byID[t.FamilyID]
		if g == nil {
			g = &RefreshGroup{FamilyID: t.FamilyID, DeviceName: t.DeviceName, ExpiresAt: t.ExpiresAt.UTC()}
			byID[t.FamilyID] = g
			order = append(order, g)
		}
		g.Tokens++
		if t.UsedAt != nil {
			g.Spent++
		}
		if t.IssuedAt.After(g.LastIssued) {
			g.LastIssued = t.IssuedAt.UTC()
		}
		if t.RevokedAt != nil && (g.RevokedAt == nil || t.RevokedAt.Before(*g.RevokedAt)) {
			g.RevokedAt = utc(t.RevokedAt)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].LastIssued.After(order[j].LastIssued) })
	out := make([]RefreshGroup, len(order))
	for i, g := range order {
		out[i] = *g
	}
	return out
}

// fingerprint is the first 8 hex digits of SHA-256(b): it shows that a
// value changed without giving the value away.
func fingerprint(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// writeVerifyError answers a failed verification the way the API does.
// The routes package's errors.go is the reference for these codes; this
// endpoint is a plain http.Handler outside the Gin router, so it maps the
// few errors verification and a read can give itself.
func writeVerifyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, models.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "service_unavailable", "the service is temporarily unavailable, try again")
	case errors.Is(err, strategy.ErrTokenExpired):
		writeError(w, http.StatusUnauthorized, "token_expired", "the token has expired")
	case errors.Is(err, strategy.ErrTokenRevoked):
		writeError(w, http.StatusUnauthorized, "token_revoked", "the token has been revoked")
	default:
		// Fail closed: anything else, including an error this switch does
		// not know, rejects the token.
		writeError(w, http.StatusUnauthorized, "token_invalid", "the token is invalid")
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
