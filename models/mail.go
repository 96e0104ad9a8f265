package models

import "time"

// MailMessage is one row of the mail outbox (table mail_messages): every
// mail the server sends is written here first, in the same transaction as
// what causes it, and delivered by a worker on any instance. The body is
// sealed (AES-GCM, see package mail) and erased once the message is sent
// or failed, so that a dump of the table holds no usable link.
type MailMessage struct {
	ID        uint64 `gorm:"primaryKey;autoIncrement"`
	Kind      string `gorm:"size:40;not null"`
	Recipient string `gorm:"size:254;not null"`
	// UserID is the account the message is about (0: none, a test mail).
	UserID uint64 `gorm:"not null;default:0;index"`
	// Status is queued, sending, sent or failed; with NextAttemptAt it is
	// the index the workers claim by.
	Status        string    `gorm:"size:10;not null;index:idx_mail_due,priority:1"`
	NextAttemptAt time.Time `gorm:"not null;index:idx_mail_due,priority:2"`
	Attempts      int       `gorm:"not null;default:0"`
	// ClaimID and LeaseUntil are the claim of the worker sending the
	// message: a claim whose lease ran out (its worker crashed) is taken
	// again, which is why delivery is at least once across crashes.
	ClaimID    string     `gorm:"size:32;not null;default:''"`
	LeaseUntil *time.Time ``
	// Prepared is false for a request whose content a worker makes (a
	// password reset: the token is made off the request path so that
	// known and unknown addresses cost the request the same).
	Prepared bool `gorm:"not null;default:false"`
	// Body is the sealed content; nil once sent or failed.
	Body []byte
	// LastError is the last delivery error, without secrets.
	LastError string     `gorm:"size:500;not null;default:''"`
	CreatedAt time.Time  `gorm:"not null;index"`
	UpdatedAt time.Time  `gorm:"not null"`
	SentAt    *time.Time ``
}

// Mail message statuses.
const (
	MailQueued  = "queued"
	MailSending = "sending"
	MailSent    = "sent"
	MailFailed  = "failed"
)

// EmailToken is a single-use token sent by mail to prove an address:
// verify_email (Purpose "verify", Email the address to verify) or an
// email change (Purpose "change", Email the new address). Only its
// SHA-256 is stored; the purpose keeps one kind from confirming the other.
type EmailToken struct {
	ID        uint64     `gorm:"primaryKey;autoIncrement"`
	TokenHash Binary     `gorm:"type:varbinary(32);not null;uniqueIndex"`
	UserID    uint64     `gorm:"not null;index"`
	Purpose   string     `gorm:"size:10;not null"`
	Email     string     `gorm:"size:254;not null"`
	CreatedAt time.Time  `gorm:"not null"`
	ExpiresAt time.Time  `gorm:"not null;index"`
	UsedAt    *time.Time ``
}

// Email token purposes.
const (
	EmailVerify = "verify"
	EmailChange = "change"
)
