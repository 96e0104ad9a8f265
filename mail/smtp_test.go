package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/internal/mailpit"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

func smtpSender(t *testing.T, mp *mailpit.Server) *mail.SMTP {
	t.Helper()
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "none", From: "auth@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSMTPDelivery: a queued message arrives at a real SMTP server
// (Mailpit, mail.smtp.tls none: no STARTTLS attempted) with its subject,
// From, text and HTML parts and link; afterwards the row is sent, without
// body, and a dump of the table holds neither the token nor the link
// (nor does it before delivery: the body is sealed).
func TestSMTPDelivery(t *testing.T) {
	mp := mailpit.Start(t)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			ob := newOutbox(t, db, smtpSender(t, mp), nil)
			const token = "SECRETtoken-abc123"
			if err := queue(t, db, ob, mail.Draft{Kind: mail.PasswordReset, To: "smtp-" + driver + "@example.com", UserID: 1, Token: token}); err != nil {
				t.Fatal(err)
			}
			if dump := dumpTable(t, db); strings.Contains(dump, token) || strings.Contains(dump, "reset-password") {
				t.Fatalf("before delivery, the table holds the token or link in clear:\n%s", dump)
			}
			drain(t, ob)
			var found *mailpit.Message
			for _, s := range mp.Wait(ctxT(t), 1) {
				if s.To[0].Address == "smtp-"+driver+"@example.com" {
					m := mp.Message(s.ID)
					found = &m
				}
			}
			if found == nil {
				t.Fatal("the message did not arrive")
			}
			link := "https://app.example.com/reset-password?token=" + token
			if found.Subject != "Reset your password" || found.From.Address != "auth@example.com" ||
				!strings.Contains(found.Text, link) || !strings.Contains(found.HTML, link) {
				t.Fatalf("arrived: %+v", found)
			}
			if dump := dumpTable(t, db); strings.Contains(dump, token) || strings.Contains(dump, "reset-password") {
				t.Fatalf("after delivery, the table holds the token or link:\n%s", dump)
			}
			r := rows(t, db)
			if r[0].Status != models.MailSent || r[0].Body != nil {
				t.Fatalf("row: %+v", r[0])
			}
		})
	}
}

// dumpTable is every column of every outbox row, as text.
func dumpTable(t *testing.T, db *gorm.DB) string {
	t.Helper()
	var all []map[string]any
	if err := db.Table("mail_messages").Find(&all).Error; err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, row := range all {
		for k, v := range row {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%s=%v ", k, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestSMTPFaults: SMTP down then back (delivered later), 421/451 for the
// recipient (retried, then delivered), 550 (failed at once, body erased,
// nothing in the log or the row carries the token), and a message out of
// attempts (failed).
func TestSMTPFaults(t *testing.T) {
	mp := mailpit.Start(t)
	const token = "SECRETtoken-faults"
	type check func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string)
	waitStatus := func(t *testing.T, db *gorm.DB, ob *mail.Outbox, status string) models.MailMessage {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := ob.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := rows(t, db)
			if len(r) == 1 && r[0].Status == status {
				return r[0]
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the message never became %s: %+v", status, rows(t, db))
		return models.MailMessage{}
	}
	arrived := func(to string) bool {
		for _, s := range mp.Messages() {
			if s.To[0].Address == to {
				return true
			}
		}
		return false
	}
	cases := []struct {
		name string
		run  check
	}{
		{"smtp down then back", func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string) {
			mp.Down()
			defer mp.Up()
			if _, err := ob.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := rows(t, db)[0]
			if r.Status != models.MailQueued || r.Attempts != 1 || r.LastError == "" || r.Body == nil {
				t.Fatalf("with SMTP down: %+v", r)
			}
			mp.Up()
			waitStatus(t, db, ob, models.MailSent)
			if !arrived(to) {
				t.Fatal("not delivered after SMTP came back")
			}
		}},
		{"451 retried", func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string) {
			mp.Chaos(451, 100)
			defer mp.Chaos(451, 0)
			if _, err := ob.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := rows(t, db)[0]
			if r.Status != models.MailQueued || !strings.Contains(r.LastError, "451") {
				t.Fatalf("after a 451: %+v", r)
			}
			mp.Chaos(451, 0)
			waitStatus(t, db, ob, models.MailSent)
			if !arrived(to) {
				t.Fatal("not delivered after the 451s stopped")
			}
		}},
		{"421 retried", func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string) {
			mp.Chaos(421, 100)
			defer mp.Chaos(421, 0)
			if _, err := ob.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if r := rows(t, db)[0]; r.Status != models.MailQueued {
				t.Fatalf("after a 421: %+v", r)
			}
			mp.Chaos(421, 0)
			waitStatus(t, db, ob, models.MailSent)
		}},
		{"550 failed at once", func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string) {
			mp.Chaos(550, 100)
			defer mp.Chaos(550, 0)
			r := waitStatus(t, db, ob, models.MailFailed)
			if r.Attempts != 1 || r.Body != nil || !strings.Contains(r.LastError, "550") || strings.Contains(r.LastError, token) {
				t.Fatalf("after a 550: %+v", r)
			}
			if arrived(to) {
				t.Fatal("delivered despite the 550")
			}
		}},
		{"out of attempts", func(t *testing.T, db *gorm.DB, ob *mail.Outbox, to string) {
			mp.Chaos(451, 100)
			defer mp.Chaos(451, 0)
			r := waitStatus(t, db, ob, models.MailFailed)
			if r.Attempts != 3 || r.Body != nil {
				t.Fatalf("after max_attempts 451s: %+v", r)
			}
		}},
	}
	for _, driver := range dbtest.Drivers() {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				db := dbtest.Open(t, driver)
				var logs bytes.Buffer
				ob := newOutbox(t, db, smtpSender(t, mp), func(o *mail.Options) {
					o.Log = slog.New(slog.NewTextHandler(&logs, nil))
					o.RetryDelay = 5 * time.Millisecond
				})
				to := strings.ReplaceAll(strings.ToLower(driver+"-"+tc.name), " ", "-") + "@example.com"
				if err := queue(t, db, ob, mail.Draft{Kind: mail.PasswordReset, To: to, UserID: 1, Token: token}); err != nil {
					t.Fatal(err)
				}
				tc.run(t, db, ob, to)
				if strings.Contains(logs.String(), token) {
					t.Fatalf("the log carries the token:\n%s", logs.String())
				}
				if dump := dumpTable(t, db); strings.Contains(dump, token) {
					t.Fatalf("the table carries the token:\n%s", dump)
				}
			})
		}
	}
}

// cutSender sends through next, and after n messages cancels the worker's
// context, like a process killed in the middle of a batch.
type cutSender struct {
	next   mail.Sender
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cutSender) Send(ctx context.Context, m *mail.Message) error {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		c.cancel()
		return ctx.Err()
	}
	c.n--
	c.mu.Unlock()
	return c.next.Send(ctx, m)
}

// TestRestartWhileQueued: an instance stops in the middle of a batch; a
// new one (after the claims' lease) delivers the rest. Every message
// arrives once: none lost, none twice.
func TestRestartWhileQueued(t *testing.T) {
	mp := mailpit.Start(t)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			const n = 30
			tag := "restart-" + driver
			ctx, cancel := context.WithCancel(context.Background())
			first := newOutbox(t, db, &cutSender{next: smtpSender(t, mp), n: 7, cancel: cancel}, func(o *mail.Options) { o.Lease = 300 * time.Millisecond })
			for i := range n {
				if err := queue(t, db, first, mail.Draft{Kind: mail.PasswordReset, To: fmt.Sprintf("%s-%d@example.com", tag, i), Token: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			first.Run(ctx) // returns once the sender "crashed"
			second := newOutbox(t, db, smtpSender(t, mp), func(o *mail.Options) { o.Lease = 300 * time.Millisecond })
			drain(t, second)
			seen := map[string]int{}
			for _, s := range mp.Messages() {
				if strings.HasPrefix(s.To[0].Address, tag+"-") {
					seen[s.To[0].Address]++
				}
			}
			if len(seen) != n {
				t.Fatalf("%d distinct recipients got mail, want %d", len(seen), n)
			}
			for to, c := range seen {
				if c != 1 {
					t.Fatalf("%s got %d mails", to, c)
				}
			}
		})
	}
}

// TestTwoInstancesExactlyOnce: two workers, each on its own connection
// pool to one database, share 200 messages: each arrives exactly once.
func TestTwoInstancesExactlyOnce(t *testing.T) {
	mp := mailpit.Start(t)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			drv, dsn := dbtest.DSN(t, driver)
			open := func() *gorm.DB {
				db, err := models.Open(drv, dsn, models.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if s, err := db.DB(); err == nil {
						_ = s.Close()
					}
				})
				return db
			}
			a, b := open(), open()
			if err := models.Migrate(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			obA, obB := newOutbox(t, a, smtpSender(t, mp), nil), newOutbox(t, b, smtpSender(t, mp), nil)
			const n = 200
			tag := "twice-" + driver
			for i := range n {
				if err := queue(t, a, obA, mail.Draft{Kind: mail.VerifyEmail, To: fmt.Sprintf("%s-%d@example.com", tag, i), Token: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			counts := map[string]*int{"a": new(int), "b": new(int)}
			for name, ob := range map[string]*mail.Outbox{"a": obA, "b": obB} {
				wg.Go(func() {
					for ctx.Err() == nil {
						k, err := ob.RunOnce(ctx)
						if err != nil && ctx.Err() == nil {
							t.Errorf("%s: %v", name, err)
						}
						*counts[name] += k
						if k == 0 {
							time.Sleep(5 * time.Millisecond)
						}
					}
				})
			}
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				var left int64
				db := a.Model(&models.MailMessage{}).Where("status <> ?", models.MailSent).Count(&left)
				if db.Error == nil && left == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			seen := map[string]int{}
			for _, s := range mp.Messages() {
				if strings.HasPrefix(s.To[0].Address, tag+"-") {
					seen[s.To[0].Address]++
				}
			}
			dups := 0
			for _, c := range seen {
				if c > 1 {
					dups++
				}
			}
			if len(seen) != n || dups != 0 {
				t.Fatalf("%d of %d recipients got mail, %d more than once", len(seen), n, dups)
			}
			t.Logf("instance a claimed %d, b %d", *counts["a"], *counts["b"])
		})
	}
}

// TestHeaderInjectionRefused: a recipient with CR/LF, or a template whose
// subject breaks the header line, is refused and nothing is queued.
func TestHeaderInjectionRefused(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ob := newOutbox(t, db, &recorder{}, nil)
	for _, to := range []string{"ann@example.com\r\nBcc: evil@example.com", "ann@example.com\nX: y", "Ann <ann@example.com>", "ANN@example.com"} {
		t.Run(fmt.Sprintf("%q", to), func(t *testing.T) {
			err := queue(t, db, ob, mail.Draft{Kind: mail.PasswordReset, To: to, Token: "t"})
			if !errors.Is(err, mail.ErrInvalidHeader) {
				t.Fatalf("queue: %v, want ErrInvalidHeader", err)
			}
			if r := rows(t, db); len(r) != 0 {
				t.Fatalf("queued: %+v", r)
			}
		})
	}
	t.Run("subject with a line break", func(t *testing.T) {
		dir := t.TempDir()
		src := "{{define \"subject\"}}Hello\r\nBcc: evil@example.com{{end}}body\n"
		if err := os.WriteFile(filepath.Join(dir, "password_reset.txt"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := mail.LoadTemplates(dir)
		if !errors.Is(err, mail.ErrInvalidHeader) {
			t.Fatalf("LoadTemplates: %v, want ErrInvalidHeader", err)
		}
	})
}

// TestBrokenTemplate: a template that does not parse is an error that
// names its file; one that parses but fails to render is one too.
func TestBrokenTemplate(t *testing.T) {
	cases := []struct{ file, src string }{
		{"verify_email.html", "<p>{{.Link</p>"},
		{"password_reset.txt", "{{define \"subject\"}}x{{end}}{{if}}"},
		{"email_taken.txt", "{{define \"subject\"}}x{{end}}{{.NoSuchField}}"},
		{"password_changed.txt", "no subject"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := mail.LoadTemplates(dir)
			if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(strings.TrimSuffix(tc.file, ".txt"), ".html")) {
				t.Fatalf("LoadTemplates: %v, want an error naming %s", err, tc.file)
			}
		})
	}
	t.Run("override used", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "test.txt"), []byte("{{define \"subject\"}}Custom {{.Email}}{{end}}hi"), 0o600); err != nil {
			t.Fatal(err)
		}
		tpl, err := mail.LoadTemplates(dir)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tpl.Render(mail.Test, mail.Data{Email: "a@example.com"})
		if err != nil || c.Subject != "Custom a@example.com" {
			t.Fatalf("render: %+v, %v", c, err)
		}
	})
}
