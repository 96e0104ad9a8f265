// Package mail delivers the server's mail through a durable outbox: the
// table mail_messages, written in the same transaction as what causes a
// message, and a worker on every instance that claims due messages, sends
// them through a Sender (SMTP, a webhook, or an embedding application's
// own), retries transient failures with exponential backoff, and erases
// each body once it is sent or failed.
package mail

import (
	"context"
	"errors"
	"fmt"
)

// Kind names a message's purpose and its template.
type Kind string

// The kinds of mail the server sends.
const (
	PasswordReset      Kind = "password_reset"
	VerifyEmail        Kind = "verify_email"
	EmailChangeConfirm Kind = "email_change_confirm"
	EmailChangeNotice  Kind = "email_change_notice"
	PasswordChanged    Kind = "password_changed"
	EmailTaken         Kind = "email_taken"
	// RecoveryCodeUsed tells the owner that a second-factor recovery code
	// was spent.
	RecoveryCodeUsed Kind = "mfa_recovery_code_used"
	// Test is `authserver mail send-test`.
	Test Kind = "test"
)

// Kinds lists every kind with a template.
var Kinds = []Kind{PasswordReset, VerifyEmail, EmailChangeConfirm, EmailChangeNotice, PasswordChanged, EmailTaken, RecoveryCodeUsed, Test}

// Message is one whole mail as a Sender receives it.
type Message struct {
	// ID is the outbox row's id: a Sender may use it to drop a duplicate
	// after a crash (delivery is at least once).
	ID      uint64
	Kind    Kind
	To      string
	Subject string
	Text    string
	HTML    string
	// Link is the mail's link (mail.site_url plus a mail.links path), ""
	// for notices.
	Link string
	// Token is the secret the link carries, for an application that
	// builds its own link; "" for notices.
	Token string
}

// Sender delivers one message. An error wrapped with Permanent fails the
// message at once; any other error is retried.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// PermanentError marks a failure that retrying cannot fix (an SMTP 5xx for
// the recipient, a webhook's 4xx).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err, or what it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ErrInvalidHeader is a recipient or subject that could inject a header
// (CR or LF) or is not a bare address: nothing is queued.
var ErrInvalidHeader = errors.New("mail: invalid header value")

func checkHeader(field, v string) error {
	for _, r := range v {
		if r == '\r' || r == '\n' || r == 0 {
			return fmt.Errorf("%w: %s contains a line break", ErrInvalidHeader, field)
		}
	}
	return nil
}
