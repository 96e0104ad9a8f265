package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/mailpit"
	"github.com/revocable/authserver/models/dbtest"
)

// TestMailBinary: the real binary with only mail.smtp.*, mail.from and
// mail.site_url set, against a real SMTP server (Mailpit). Reset mails
// queued while SMTP is down survive a server restart and each arrives
// once; /readyz names the transport; mail list shows the outbox without
// bodies; mail send-test delivers; a broken template stops config check
// and serve, naming the file.
func TestMailBinary(t *testing.T) {
	mp := mailpit.Start(t)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := newDeployment(t, driver, map[string]string{
				"AUTH_MAIL_SMTP_HOST": "127.0.0.1", "AUTH_MAIL_SMTP_PORT": strconv.Itoa(mp.SMTPPort), "AUTH_MAIL_SMTP_TLS": "none",
				"AUTH_MAIL_FROM": "auth@example.com", "AUTH_MAIL_SITE_URL": "https://app.example.com",
				"AUTH_MAIL_RETRY_DELAY": "200ms", "AUTH_RATELIMIT_RESET_PER_IP": "0", "AUTH_RATELIMIT_RESET_PER_ACCOUNT": "0",
			})
			srv := d.start(t)
			tag := "bin-" + driver
			const n = 5
			for i := range n {
				srv.Register(t, fmt.Sprintf("%s-%d@example.com", tag, i), testPassword)
			}
			if body := get(t, srv.URL+"/readyz"); !strings.Contains(body, `"transport":"smtp 127.0.0.1:`+strconv.Itoa(mp.SMTPPort)) {
				t.Fatalf("/readyz does not name the transport: %s", body)
			}
			mp.Down()
			for i := range n {
				r := srv.Do(t, "POST", "/api/v1/auth/password-reset", "", map[string]string{"email": fmt.Sprintf("%s-%d@example.com", tag, i)})
				if r.Status != 202 {
					t.Fatalf("reset with SMTP down: %d %s", r.Status, r.Body)
				}
			}
			time.Sleep(300 * time.Millisecond) // the worker tries, and fails
			if err := srv.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if out := d.must(t, "", "mail", "list", "--status", "queued").out; strings.Count(out, "password_reset") != n {
				t.Fatalf("mail list --status queued while SMTP is down:\n%s", out)
			}
			mp.Up()
			d.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			count := func() map[string]int {
				seen := map[string]int{}
				for _, s := range mp.Messages() {
					if strings.HasPrefix(s.To[0].Address, tag+"-") && s.Subject == "Reset your password" {
						seen[s.To[0].Address]++
					}
				}
				return seen
			}
			for len(count()) < n && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // room for a duplicate to show
			seen := count()
			if len(seen) != n {
				t.Fatalf("after the restart %d of %d accounts got their mail", len(seen), n)
			}
			for to, c := range seen {
				if c != 1 {
					t.Fatalf("%s got %d mails", to, c)
				}
			}
			out := d.must(t, "", "mail", "list").out
			if strings.Count(out, "sent") < n || strings.Contains(out, "token=") {
				t.Fatalf("mail list:\n%s", out)
			}
			if out := d.must(t, "", "mail", "list", "--status", "failed").out; strings.Contains(out, "password_reset") {
				t.Fatalf("mail list --status failed lists a message:\n%s", out)
			}
			to := tag + "-ops@example.com"
			if out := d.must(t, "", "mail", "send-test", "--to", to).out; !strings.Contains(out, "accepted the test mail") {
				t.Fatalf("send-test: %s", out)
			}
			found := false
			for _, s := range mp.Messages() {
				if s.To[0].Address == to && s.Subject == "authserver test mail" {
					found = true
				}
			}
			if !found {
				t.Fatal("the test mail did not arrive")
			}
		})
	}
	t.Run("broken template", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "verify_email.html"), []byte("<p>{{.Link</p>"), 0o600); err != nil {
			t.Fatal(err)
		}
		d := newDeployment(t, "sqlite", map[string]string{"AUTH_MAIL_TEMPLATES_DIR": dir})
		want := filepath.Join(dir, "verify_email.html")
		d.mustFail(t, want, "config", "check")
		d.mustFail(t, want, "serve")
	})
	t.Run("send-test without a transport", func(t *testing.T) {
		d := newDeployment(t, "sqlite", nil)
		d.mustFail(t, "no mail transport is configured", "mail", "send-test", "--to", "a@example.com")
	})
}
