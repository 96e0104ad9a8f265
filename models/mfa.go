package models

import "time"

// MFAFactor is one second factor of an account: a TOTP secret (RFC 6238).
// The secret is stored sealed (AES-GCM under a key derived from the server
// secret, see package strategy), never in clear.
type MFAFactor struct {
	// ID is random, so that one account's ids say nothing about another's.
	ID     string `gorm:"primaryKey;size:32"`
	UserID uint64 `gorm:"not null;index"`
	Type   string `gorm:"size:16;not null"`
	// PendingUserID is UserID while the factor is unconfirmed and NULL
	// once it is confirmed: its unique index is what allows at most one
	// unconfirmed factor per account, decided by the database rather than
	// by a read before the insert.
	PendingUserID *uint64 `gorm:"uniqueIndex"`
	// KeyID names the server secret whose derived key sealed the secret.
	KeyID  string `gorm:"size:16;not null"`
	Sealed Binary `gorm:"type:varbinary(128);not null"`
	// LastStep is the last accepted TOTP time step: a code is accepted
	// only for a later step, advanced with a compare-and-set.
	LastStep    int64      `gorm:"not null;default:0"`
	CreatedAt   time.Time  `gorm:"not null"`
	ExpiresAt   *time.Time ``
	ConfirmedAt *time.Time ``
	LastUsedAt  *time.Time ``
}

// MFARecoveryCode is one single-use recovery code, stored as a keyed hash.
type MFARecoveryCode struct {
	ID        uint64     `gorm:"primaryKey;autoIncrement"`
	UserID    uint64     `gorm:"not null;index"`
	CodeHash  Binary     `gorm:"type:varbinary(32);not null"`
	CreatedAt time.Time  `gorm:"not null"`
	UsedAt    *time.Time ``
}

// MFAChallenge is the state of a login waiting for its second factor: the
// mfa_token (stored as its SHA-256) handed out after the right password.
// It is single use, short lived and dies after a few wrong codes.
type MFAChallenge struct {
	ID        uint64 `gorm:"primaryKey;autoIncrement"`
	TokenHash Binary `gorm:"type:varbinary(32);not null;uniqueIndex"`
	UserID    uint64 `gorm:"not null;index"`
	// PasswordHash is the account's password hash when the password was
	// checked: a password changed since ends the challenge.
	PasswordHash string     `gorm:"size:72;not null"`
	DeviceName   string     `gorm:"size:100;not null;default:''"`
	Attempts     int        `gorm:"not null;default:0"`
	CreatedAt    time.Time  `gorm:"not null"`
	ExpiresAt    time.Time  `gorm:"not null;index"`
	UsedAt       *time.Time ``
}
