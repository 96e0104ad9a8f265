// Package models holds the GORM models, opening the database and the schema
// migration. It knows nothing about HTTP or tokens: the strategy package decides
// what the columns mean.
package models

import (
	"gorm.io/gorm"

	"time"
)

// User is an account. Besides the credentials it carries the per-user
// revocation state of every strategy, so that verifying a token reads one row:
// each strategy uses its own columns and ignores the others.
type User struct {
	ID           uint64    `gorm:"primaryKey;autoIncrement"`
	Email        string    `gorm:"size:254;not null;uniqueIndex"`
	PasswordHash string    `gorm:"size:72;not null"`
	CreatedAt    time.Time `gorm:"not null"`
	UpdatedAt    time.Time `gorm:"not null"`
	// EmailVerifiedAt is when the address was proven (a verification
	// link, or an email change confirmed from the new address); nil:
	// never.
	EmailVerifiedAt *time.Time ``

	// KeySalt goes into the per-user signing key. Rotating it signs the user
	// out everywhere (password_key's logout-all) without touching the password.
	KeySalt Binary `gorm:"type:varbinary(32);not null"`
	// State is single_device's current login id: tokens carrying another one
	// are rejected.
	State string `gorm:"size:64;not null;default:''"`
	// Devices is the device map of multi_device (and the one device of
	// single_device), JSON: login id -> Device.
	Devices DeviceMap `gorm:"type:mediumtext"`
	// ValidAfterMicros is valid_date's cutoff, microseconds since the epoch:
	// tokens issued before it are rejected. An integer keeps sub-second
	// precision identical on SQLite and MySQL.
	ValidAfterMicros int64 `gorm:"not null;default:0"`
	// TokenVersion is token_version's counter, copied into every token.
	TokenVersion int64 `gorm:"not null;default:0"`
	// Revision is bumped, in the same transaction, by every change of the
	// state above; every cache invalidation carries it, so a verification
	// cache can refuse to store what it read before a revocation (see
	// package cache).
	Revision int64 `gorm:"not null;default:1"`
}

// Device describes one login as the user sees it in a device list.
type Device struct {
	Name       string    `json:"name"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// RefreshID is the id of the login's latest access token generation
	// (the login or its latest refresh), for jwt.refresh_supersedes_access.
	RefreshID string `json:"rid,omitempty"`
}

// Session is session_table's row: one per login, looked up on every request.
type Session struct {
	ID         string    `gorm:"primaryKey;size:64"`
	UserID     uint64    `gorm:"not null;index"`
	DeviceName string    `gorm:"size:100;not null;default:''"`
	UserAgent  string    `gorm:"size:512;not null;default:''"`
	IP         string    `gorm:"size:64;not null;default:''"`
	CreatedAt  time.Time `gorm:"not null"`
	LastSeenAt time.Time `gorm:"not null"`
	// ExpiresAt is when nothing issued for this login can be valid any more
	// (the refresh family's end); the pruning job deletes rows past it.
	ExpiresAt time.Time  `gorm:"not null;index"`
	RevokedAt *time.Time `gorm:"index"`
	// RefreshID: see Device.RefreshID.
	RefreshID string `gorm:"size:64;not null;default:''"`
}

// RefreshToken is one link of a rotating refresh-token chain. Only the
// SHA-256 of the token is stored.
type RefreshToken struct {
	ID        uint64 `gorm:"primaryKey;autoIncrement"`
	TokenHash Binary `gorm:"type:varbinary(32);not null;uniqueIndex"`
	UserID    uint64 `gorm:"not null;index"`
	// FamilyID is the login id: one family per login, shared with the
	// device/session id of the strategies that track devices.
	FamilyID   string     `gorm:"size:64;not null;index"`
	DeviceName string     `gorm:"size:100;not null;default:''"`
	IssuedAt   time.Time  `gorm:"not null"`
	ExpiresAt  time.Time  `gorm:"not null;index"`
	UsedAt     *time.Time ``
	RevokedAt  *time.Time `gorm:"index"`
	// AAL and AMR are the assurance of the login (aal1 with ["pwd"], aal2
	// with a second factor), carried to every access token a refresh of
	// it issues. AMR is a comma-separated list. Empty (rows from before
	// they existed) means aal1, ["pwd"].
	AAL string `gorm:"size:8;not null;default:''"`
	AMR string `gorm:"size:64;not null;default:''"`
}

// ResetToken is a single-use password-reset token, stored as its SHA-256.
type ResetToken struct {
	ID        uint64     `gorm:"primaryKey;autoIncrement"`
	TokenHash Binary     `gorm:"type:varbinary(32);not null;uniqueIndex"`
	UserID    uint64     `gorm:"not null;index"`
	CreatedAt time.Time  `gorm:"not null"`
	ExpiresAt time.Time  `gorm:"not null;index"`
	UsedAt    *time.Time ``
}

// Invalidation is one row of the transactional outbox of cache
// invalidations: written in the same transaction as the change of a user's
// revocation state, and read by every instance at least every
// cache.max_staleness, so that no instance trusts its cache for a user
// longer than that after a change, with or without Redis.
type Invalidation struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement"`
	UserID    uint64    `gorm:"not null"`
	Revision  int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null;index"`
}

// AuditEvent is one security event: a login, a revocation, an admin
// action. It never holds a token or a password.
type AuditEvent struct {
	ID uint64 `gorm:"primaryKey;autoIncrement"`
	// CreatedAt is indexed alone for the retention prune, and after
	// UserID for a user's newest events.
	CreatedAt time.Time `gorm:"not null;index;index:idx_audit_user_time,priority:2"`
	Action    string    `gorm:"size:40;not null"`
	Result    string    `gorm:"size:20;not null"`
	// UserID is nil when the event concerns no known account (a failed
	// login for an unknown email, a deleted account).
	UserID    *uint64 `gorm:"index:idx_audit_user_time,priority:1"`
	LoginID   string  `gorm:"size:64;not null;default:''"`
	IP        string  `gorm:"size:64;not null;default:''"`
	UserAgent string  `gorm:"size:512;not null;default:''"`
	RequestID string  `gorm:"size:64;not null;default:''"`
	// Details is a small JSON object.
	Details string `gorm:"type:text"`
}

// All lists every model, in migration order.
func All() []any {
	return []any{&User{}, &Session{}, &RefreshToken{}, &ResetToken{}, &Invalidation{}, &AuditEvent{}, &LoginThrottle{}, &MailMessage{}, &EmailToken{}, &MFAFactor{}, &MFARecoveryCode{}, &MFAChallenge{}}
}

// DeleteUser deletes the user and everything that belongs to it, inside tx.
func DeleteUser(tx *gorm.DB, id uint64) error {
	for _, m := range []any{&Session{}, &RefreshToken{}, &ResetToken{}, &AuditEvent{}, &EmailToken{}, &MailMessage{}, &MFAFactor{}, &MFARecoveryCode{}, &MFAChallenge{}} {
		if err := tx.Where("user_id = ?", id).Delete(m).Error; err != nil {
			return Unavailable("delete user data", err)
		}
	}
	if err := tx.Delete(&User{}, "id = ?", id).Error; err != nil {
		return Unavailable("delete user", err)
	}
	return nil
}

// Truncate cuts s to at most n bytes, to fit a column, without splitting a
// UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
