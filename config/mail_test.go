package config_test

import (
	"strings"
	"testing"

	"github.com/revocable/authserver/config"
)

// TestMailValidation: mail.* and accounts.* settings that cannot work are
// refused with a message naming the setting.
func TestMailValidation(t *testing.T) {
	smtp := func(c *config.Config) {
		c.Mail.SMTP.Host, c.Mail.From, c.Mail.SiteURL = "smtp.example.com", "auth@example.com", "https://app.example.com"
	}
	cases := []struct {
		name string
		set  func(*config.Config)
		want string // "" = valid
	}{
		{"defaults", func(*config.Config) {}, ""},
		{"smtp complete", smtp, ""},
		{"site_url not absolute", func(c *config.Config) { smtp(c); c.Mail.SiteURL = "/app" }, "mail.site_url"},
		{"site_url not http", func(c *config.Config) { smtp(c); c.Mail.SiteURL = "ftp://x.example" }, "mail.site_url"},
		{"transport without site_url", func(c *config.Config) { smtp(c); c.Mail.SiteURL = "" }, "mail.site_url must be set"},
		{"smtp without from", func(c *config.Config) { smtp(c); c.Mail.From = "" }, "mail.from"},
		{"from with a line break", func(c *config.Config) { smtp(c); c.Mail.From = "a@example.com\r\nBcc: x@example.com" }, "line breaks"},
		{"bad tls", func(c *config.Config) { smtp(c); c.Mail.SMTP.TLS = "ssl" }, "mail.smtp.tls"},
		{"bad port", func(c *config.Config) { smtp(c); c.Mail.SMTP.Port = 0 }, "mail.smtp.port"},
		{"password and file", func(c *config.Config) { smtp(c); c.Mail.SMTP.Password, c.Mail.SMTP.PasswordFile = "x", "/f" }, "password_file"},
		{"both transports", func(c *config.Config) {
			smtp(c)
			c.Mail.Webhook.URL, c.Mail.Webhook.Secret = "https://h.example/m", "0123456789abcdef"
		}, "choose one transport"},
		{"webhook short secret", func(c *config.Config) {
			c.Mail.SiteURL, c.Mail.Webhook.URL, c.Mail.Webhook.Secret = "https://app.example.com", "https://h.example/m", "short"
		}, "mail.webhook.secret"},
		{"webhook bad url", func(c *config.Config) {
			c.Mail.SiteURL, c.Mail.Webhook.URL, c.Mail.Webhook.Secret = "https://app.example.com", "h.example/m", "0123456789abcdef"
		}, "mail.webhook.url"},
		{"link not a path", func(c *config.Config) { c.Mail.Links.VerifyEmail = "verify" }, "mail.links.verify_email"},
		{"no attempts", func(c *config.Config) { c.Mail.MaxAttempts = 0 }, "mail.max_attempts"},
		{"no workers", func(c *config.Config) { c.Mail.Workers = 0 }, "mail.workers"},
		{"zero retry delay", func(c *config.Config) { c.Mail.RetryDelay = 0 }, "mail.retry_delay"},
		{"zero verify ttl", func(c *config.Config) { c.Accounts.VerifyTTL = 0 }, "accounts.verify_ttl"},
		{"negative cooldown", func(c *config.Config) { c.Accounts.VerifyCooldown = -1 }, "accounts.verify_cooldown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Defaults()
			tc.set(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error about %q", err, tc.want)
			}
		})
	}
	t.Run("warning", func(t *testing.T) {
		c := config.Defaults()
		smtp(c)
		if w := c.MailWarnings(); len(w) != 1 || !strings.Contains(w[0], "require_verified_email") {
			t.Fatalf("warnings %v", w)
		}
		c.Accounts.RequireVerifiedEmail = true
		if w := c.MailWarnings(); len(w) != 0 {
			t.Fatalf("warnings %v", w)
		}
	})
}
