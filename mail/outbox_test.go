package mail_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// recorder is a Sender that keeps messages, failing as told.
type recorder struct {
	mu   sync.Mutex
	got  []mail.Message
	fail func(m *mail.Message) error
}

func (r *recorder) Send(_ context.Context, m *mail.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return err
		}
	}
	r.got = append(r.got, *m)
	return nil
}

func (r *recorder) messages() []mail.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mail.Message(nil), r.got...)
}

func newOutbox(t *testing.T, db *gorm.DB, s mail.Sender, tweak func(*mail.Options)) *mail.Outbox {
	t.Helper()
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	o := mail.Options{
		Keys: [][]byte{make([]byte, 32)}, Templates: tpl, Sender: s, SiteURL: "https://app.example.com",
		Links:      mail.Links{PasswordReset: "/reset-password", VerifyEmail: "/verify-email", EmailChangeConfirm: "/confirm-email-change"},
		RetryDelay: 20 * time.Millisecond, MaxAttempts: 3, Workers: 2, Poll: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&o)
	}
	ob, err := mail.New(db, o)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func queue(t *testing.T, db *gorm.DB, ob *mail.Outbox, d mail.Draft) error {
	t.Helper()
	return models.Tx(context.Background(), db, func(tx *gorm.DB) error { return ob.Queue(context.Background(), tx, d) })
}

func rows(t *testing.T, db *gorm.DB) []models.MailMessage {
	t.Helper()
	var out []models.MailMessage
	if err := db.Order("id").Find(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func drain(t *testing.T, ob *mail.Outbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ob.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestOutboxDelivers(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			rec := &recorder{}
			ob := newOutbox(t, db, rec, nil)
			if err := queue(t, db, ob, mail.Draft{Kind: mail.PasswordReset, To: "ann@example.com", UserID: 7, Token: "tok-123"}); err != nil {
				t.Fatal(err)
			}
			drain(t, ob)
			got := rec.messages()
			if len(got) != 1 || got[0].To != "ann@example.com" || got[0].Token != "tok-123" ||
				got[0].Link != "https://app.example.com/reset-password?token=tok-123" {
				t.Fatalf("delivered %+v", got)
			}
			r := rows(t, db)
			if len(r) != 1 || r[0].Status != models.MailSent || r[0].Body != nil || r[0].Attempts != 1 {
				t.Fatalf("row after delivery: %+v", r)
			}
		})
	}
}

var errDown = errors.New("connection refused")
