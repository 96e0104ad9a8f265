package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig is mail.smtp.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is starttls (required), tls (implicit, port 465 usually) or
	// none (plain text, for a local Mailpit: no STARTTLS is tried).
	TLS  string
	From string
}

// SMTP sends through an SMTP server, one connection per message.
type SMTP struct {
	c    SMTPConfig
	opts []gomail.Option
}

// NewSMTP checks c and builds the sender.
func NewSMTP(c SMTPConfig) (*SMTP, error) {
	if c.Host == "" || c.From == "" {
		return nil, errors.New("mail: mail.smtp.host and mail.from are required for SMTP")
	}
	if err := checkHeader("mail.from", c.From); err != nil {
		return nil, err
	}
	opts := []gomail.Option{gomail.WithPort(c.Port)}
	switch c.TLS {
	case "starttls", "":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}))
	case "tls":
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}))
	case "none":
		// go-mail's default policy is TLSMandatory: none must say so.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("mail: mail.smtp.tls must be starttls, tls or none, got %q", c.TLS)
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	return &SMTP{c: c, opts: opts}, nil
}

// Name describes the transport (readyz, logs): no credentials.
func (s *SMTP) Name() string { return fmt.Sprintf("smtp %s:%d (%s)", s.c.Host, s.c.Port, s.c.TLS) }

// Send delivers m. The server's 5xx answers are permanent; 4xx answers,
// refused connections and timeouts are not.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.c.From); err != nil {
		return Permanent(fmt.Errorf("mail.from: %w", err))
	}
	if err := checkRecipient(m.To); err != nil {
		return Permanent(err)
	}
	if err := msg.To(m.To); err != nil {
		return Permanent(fmt.Errorf("recipient: %w", err))
	}
	if err := checkHeader("subject", m.Subject); err != nil {
		return Permanent(err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	c, err := gomail.NewClient(s.c.Host, s.opts...)
	if err != nil {
		return Permanent(err)
	}
	return classifySMTP(c.DialAndSendWithContext(ctx, msg))
}

// classifySMTP marks an SMTP 5xx answer as permanent.
func classifySMTP(err error) error {
	if err == nil {
		return nil
	}
	code := 0
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		// 0 when go-mail could not tell: retried rather than dropped.
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	var ne net.Error
	if code >= 500 && code < 600 && !errors.As(err, &ne) {
		return Permanent(fmt.Errorf("smtp %d: %w", code, err))
	}
	if code >= 400 {
		return fmt.Errorf("smtp %d: %w", code, err)
	}
	return err
}

// Log is the transport when none is configured: it sends nothing and
// says so, never with the token.
type Log struct{ Logger *slog.Logger }

// Name describes the transport.
func (l Log) Name() string { return "none (log only)" }

// Send logs that nothing was sent. It is not an error: the message is
// marked sent, as there is nothing to retry.
func (l Log) Send(ctx context.Context, m *Message) error {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg.WarnContext(ctx, "no mail transport is configured: no mail was sent (set mail.smtp.host or mail.webhook.url, or embed the server with a Mailer; reset.expose_token for local development)",
		"kind", string(m.Kind), "id", m.ID)
	return nil
}

// Describe names a sender for /readyz and logs.
func Describe(s Sender) string {
	if n, ok := s.(interface{ Name() string }); ok {
		return n.Name()
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", s), "*")
}
