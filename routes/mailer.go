package routes

import (
	"context"
	"log/slog"
)

// Mailer delivers a password-reset token to the account's email address.
type Mailer interface {
	SendPasswordReset(ctx context.Context, email, token string) error
}

// LogMailer writes reset tokens to the log, for development and demos where
// no mail is sent. It is the one place a secret reaches the log, on purpose
// and only when no real mailer is wired in: replace it in production.
type LogMailer struct {
	Log *slog.Logger
}

func (m LogMailer) SendPasswordReset(ctx context.Context, email, token string) error {
	m.Log.WarnContext(ctx, "password reset requested (LogMailer: no mail is sent; the token follows)", "email", email, "reset_token", token)
	return nil
}
