package mail_test

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestWebhook: each message is POSTed as JSON signed with HMAC-SHA256
// over the body; a 2xx is sent, a 5xx or a timeout retried, another 4xx
// failed at once.
func TestWebhook(t *testing.T) {
	const secret = "0123456789abcdef-webhook"
	cases := []struct {
		name    string
		answers []int // status per attempt; 0 = hang past the timeout
		status  string
		tries   int
	}{
		{"2xx sent", []int{204}, models.MailSent, 1},
		{"5xx retried then sent", []int{503, 500, 200}, models.MailSent, 3},
		{"timeout retried then sent", []int{0, 200}, models.MailSent, 2},
		{"4xx failed at once", []int{422}, models.MailFailed, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			var badSig atomic.Bool
			var last atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if !hmac.Equal([]byte(r.Header.Get("X-Authserver-Signature")), []byte(mail.Sign([]byte(secret), body))) {
					badSig.Store(true)
				}
				last.Store(string(body))
				i := int(calls.Add(1)) - 1
				code := tc.answers[min(i, len(tc.answers)-1)]
				if code == 0 {
					time.Sleep(300 * time.Millisecond)
					code = 200
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			wh, err := mail.NewWebhook(srv.URL+"/mail", secret, &http.Client{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			db := dbtest.Open(t, "sqlite")
			ob := newOutbox(t, db, wh, func(o *mail.Options) { o.RetryDelay = time.Millisecond; o.MaxAttempts = 5 })
			if err := queue(t, db, ob, mail.Draft{Kind: mail.VerifyEmail, To: "hook@example.com", UserID: 3, Token: "tok-hook"}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			var r []models.MailMessage
			for time.Now().Before(deadline) {
				drain(t, ob)
				if r = rows(t, db); r[0].Status == tc.status {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if r[0].Status != tc.status || r[0].Attempts != tc.tries {
				t.Fatalf("row %+v, want %s after %d attempts", r[0], tc.status, tc.tries)
			}
			if badSig.Load() {
				t.Fatal("a request carried a wrong signature")
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(last.Load().(string)), &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"kind", "to", "subject", "text", "html", "link"} {
				if _, ok := got[k]; !ok {
					t.Fatalf("webhook body has no %s: %v", k, got)
				}
			}
			if got["kind"] != "verify_email" || got["to"] != "hook@example.com" || !strings.Contains(got["link"].(string), "/verify-email?token=tok-hook") {
				t.Fatalf("webhook body %v", got)
			}
		})
	}
}
