package mail

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Webhook POSTs each message as JSON to an application's mail service,
// signed with HMAC-SHA256 over the body in X-Authserver-Signature.
type Webhook struct {
	URL    string
	secret []byte
	client *http.Client
}

// NewWebhook builds the sender; the secret must be at least 16 bytes.
func NewWebhook(rawURL, secret string, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mail.webhook.url must be an absolute http(s) URL, got %q", rawURL)
	}
	if len(secret) < 16 {
		return nil, errors.New("mail.webhook.secret must be at least 16 bytes")
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Webhook{URL: rawURL, secret: []byte(secret), client: client}, nil
}

// Name describes the transport, without the URL's query or user info.
func (w *Webhook) Name() string {
	u, _ := url.Parse(w.URL)
	return "webhook " + u.Scheme + "://" + u.Host + u.Path
}

type webhookBody struct {
	ID      uint64 `json:"id"`
	Kind    Kind   `json:"kind"`
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	Link    string `json:"link,omitempty"`
}

// Sign is the X-Authserver-Signature value of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts m: a 2xx is sent, a 5xx or 429 or no answer is retried, any
// other status failed.
func (w *Webhook) Send(ctx context.Context, m *Message) error {
	body, err := json.Marshal(webhookBody{ID: m.ID, Kind: m.Kind, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Link: m.Link})
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Authserver-Signature", Sign(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL error may carry the URL: not the token, but keep it short.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("webhook: %w", ue.Err)
		}
		return fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	default:
		return Permanent(fmt.Errorf("webhook answered %d", resp.StatusCode))
	}
}
