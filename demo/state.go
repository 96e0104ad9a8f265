package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// Bounds on what one answer reads: a demo account has a handful of logins,
// and a bug or a scripted client must not make the endpoint read a table.
const (
	maxSessionRows = 50
	maxRefreshRows = 500
)

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

// LoadState reads what the named strategy stores about user uid, the state
// a token is checked against: the strategy columns of the user row, the
// session rows under session_table, and the refresh-token families that
// every strategy keeps. The demo's GET /api/v1/demo/state answers it for
// the caller's own account; a production server has no reason to show its
// bookkeeping. Secrets never leave it: the key salt and the password hash
// appear only as fingerprints (the first 8 hex digits of their SHA-256),
// enough to see them change. A user that is gone (deleted while a
// stateless token still verifies) is strategy.ErrTokenInvalid, as in /me.
func LoadState(ctx context.Context, db *gorm.DB, strategyName string, uid uint64) (*State, error) {
	if !slices.Contains(strategy.Names(), strategyName) {
		return nil, fmt.Errorf("demo: unknown strategy %q", strategyName)
	}
	db = db.WithContext(ctx)
	var u models.User
	if err := db.Take(&u, "id = ?", uid).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, strategy.ErrTokenInvalid
		}
		return nil, models.Unavailable("load user", err)
	}
	st := &State{
		Strategy: strategyName,
		Checks:   checks(strategyName),
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
