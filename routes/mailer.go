package routes

import (
	"context"
	"log/slog"
)

// Mailer delivers a password-reset token to the account's email address.
type Mailer interface {
	SendPasswordReset(ctx context.Context, email, token string) error
}

// LogMailer is the mailer when none is wired in: it sends nothing and says
// so in the log, without the token (no secret ever reaches a log). An
// application that embeds the server passes its own Mailer
// (authserver.Options.Mailer); for local development and demos,
// reset.expose_token returns the token in the API answer instead.
type LogMailer struct {
	Log *slog.Logger
}

func (m LogMailer) SendPasswordReset(ctx context.Context, _, _ string) error {
	m.Log.WarnContext(ctx, "password reset requested, but no mailer is configured: no mail was sent (embed the server with a Mailer, or set reset.expose_token for local development)")
	return nil
}
