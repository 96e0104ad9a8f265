package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/internal/mailpit"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// newSMTPEnv is newEnv with no Mailer: the server sends through
// mail.smtp, to mp.
func newSMTPEnv(t testing.TB, driver, name string, mp *mailpit.Server, opts ...func(*config.Config)) *env {
	t.Helper()
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.NoLimits()
	cfg.Mail.SMTP.Host, cfg.Mail.SMTP.Port, cfg.Mail.SMTP.TLS = "127.0.0.1", mp.SMTPPort, "none"
	cfg.Mail.From, cfg.Mail.SiteURL = "auth@example.com", "https://app.example.com"
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	db := dbtest.Open(t, driver)
	clk := newClock()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := startServer(t, authserver.Options{Config: cfg, DB: db, Secret: testSecret, Log: log, Now: clk.Now})
	return &env{t: t, driver: driver, name: name, cfg: cfg, db: db, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: clk, mailer: &mailbox.Mailbox{}}
}

var linkToken = regexp.MustCompile(`https://app\.example\.com/reset-password\?token=([A-Za-z0-9_%-]+)`)

// mailedToken is the token of the newest reset mail to addr in Mailpit.
func mailedToken(t *testing.T, mp *mailpit.Server, addr string) string {
	t.Helper()
	for _, s := range mp.Messages() {
		if len(s.To) == 1 && s.To[0].Address == addr && s.Subject == "Reset your password" {
			m := mp.Message(s.ID)
			got := linkToken.FindStringSubmatch(m.Text)
			if got == nil {
				t.Fatalf("the mail to %s has no reset link:\n%s", addr, m.Text)
			}
			tok, err := url.QueryUnescape(got[1])
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no mail arrived for %s", addr)
	return ""
}

// TestResetMailOverSMTP: with only mail.smtp.* and mail.site_url set, a
// reset requested through the API arrives at the SMTP server (Mailpit)
// with a link whose token resets the password; the old tokens then die
// under every revoking strategy; the token works once; the answer is the
// same for an unknown address and claims no mail was sent.
func TestResetMailOverSMTP(t *testing.T) {
	mp := mailpit.Start(t)
	matrix(t, func(t *testing.T, driver, name string) {
		e := newSMTPEnv(t, driver, name, mp)
		addr := fmt.Sprintf("smtp-%s-%s@example.com", driver, strings.ReplaceAll(name, "_", "-"))
		e.register(addr)
		old := e.login(addr, "laptop")
		known := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": strings.ToUpper(addr)}})
		unknown := e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": "nobody-" + addr}})
		if string(known.Raw) != string(unknown.Raw) || strings.Contains(string(known.Raw), "sent") {
			t.Fatalf("answers %s and %s: want one body, which does not claim a mail was sent", known.Raw, unknown.Raw)
		}
		token := mailedToken(t, mp, addr)
		for _, s := range mp.Messages() {
			if s.To[0].Address == "nobody-"+addr && s.Subject == "Reset your password" {
				t.Fatal("a mail went to an address without an account")
			}
		}
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": token, "new_password": "a brand new passphrase"}})
		if name != "stateless" {
			e.wantVerify("token from before the reset", old.access, http.StatusUnauthorized)
		}
		r := e.send(req{method: "POST", path: "/api/v1/auth/password-reset/confirm", body: map[string]string{"token": token, "new_password": "yet another passphrase"}})
		apiWantErr(t, "reused reset token", r, http.StatusBadRequest, "invalid_reset_token")
		var dump []map[string]any
		if err := e.db.Table("mail_messages").Find(&dump).Error; err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(dump)
		if strings.Contains(string(raw), token) || strings.Contains(string(raw), url.QueryEscape(token)) {
			t.Fatal("mail_messages holds the token after delivery")
		}
	})
}

// TestResetBurst: 1,000 reset requests at full speed from one client
// (limits off) all get 202 (the in-memory queue this replaced answered
// 503 past 256 waiting), and every mail arrives at the SMTP server. It
// logs the request rate, the delivery rate and the p99 of the time from
// queued to accepted by SMTP.
func TestResetBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 1,000 accounts and mails")
	}
	mp := mailpit.Start(t)
	onDrivers(t, func(t *testing.T, driver string) {
		e := newSMTPEnv(t, driver, "password_key", mp, func(c *config.Config) { c.Reset.Cooldown = 0 })
		const n = 1000
		tag := "burst-" + driver
		for i := range n {
			e.register(fmt.Sprintf("%s-%d@example.com", tag, i))
		}
		// The registrations' verification mails go first.
		if err := e.srv.WaitResets(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := e.handler
		start := time.Now()
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		// One client, a few connections at a time, as fast as it goes.
		sem := make(chan struct{}, 8)
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				body := fmt.Sprintf(`{"email":"%s-%d@example.com"}`, tag, i)
				r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/password-reset", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				mu.Lock()
				codes[w.Code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		answered := time.Since(start)
		if codes[http.StatusAccepted] != n {
			t.Fatalf("answers %v, want %d × 202", codes, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := e.srv.WaitResets(ctx); err != nil {
			t.Fatal(err)
		}
		delivered := time.Since(start)
		got := 0
		for _, s := range mp.Messages() {
			if strings.HasPrefix(s.To[0].Address, tag+"-") && s.Subject == "Reset your password" {
				got++
			}
		}
		var rows []models.MailMessage
		if err := e.db.Where("status = ? AND kind = ?", models.MailSent, "password_reset").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if got != n || len(rows) != n {
			t.Fatalf("%d mails arrived, %d rows sent; want %d", got, len(rows), n)
		}
		lat := make([]time.Duration, 0, n)
		for _, r := range rows {
			lat = append(lat, r.SentAt.Sub(r.CreatedAt))
		}
		slices.Sort(lat)
		t.Logf("%s: %d resets answered 202 in %v (%.0f req/s); all %d mails delivered %v after the first request (%.0f mails/s); queue latency to SMTP p50 %v, p99 %v",
			driver, n, answered.Round(time.Millisecond), float64(n)/answered.Seconds(), n, delivered.Round(time.Millisecond),
			float64(n)/delivered.Seconds(), lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond))
	})
}
