// Package mailbox holds Mailbox, a mail.Sender that keeps what it is
// given instead of sending it.
//
// The routes and cluster tests and compare's reset scenario need the
// token a real user would find in their mail; this is the one place that
// catches it.
package mailbox

import (
	"context"
	"sync"

	"github.com/revocable/authserver/mail"
)

// Mailbox keeps the last token of each kind sent to each address and
// counts the mails per address. Its zero value is ready; it is safe for
// concurrent use.
type Mailbox struct {
	mu       sync.Mutex
	tokens   map[mailKey]string
	sent     map[string]int
	messages []mail.Message
}

type mailKey struct {
	kind mail.Kind
	to   string
}

// Send keeps m.
func (m *Mailbox) Send(_ context.Context, msg *mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[mailKey]string{}
		m.sent = map[string]int{}
	}
	if msg.Token != "" {
		m.tokens[mailKey{msg.Kind, msg.To}] = msg.Token
	}
	if msg.Kind == mail.PasswordReset {
		m.sent[msg.To]++
	}
	m.messages = append(m.messages, *msg)
	return nil
}

// Last is the last reset token sent to email, or "" when none was.
func (m *Mailbox) Last(email string) string { return m.LastOf(mail.PasswordReset, email) }

// LastOf is the last token of kind k sent to email.
func (m *Mailbox) LastOf(k mail.Kind, email string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[mailKey{k, email}]
}

// Sent is how many reset mails went to email.
func (m *Mailbox) Sent(email string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[email]
}

// Messages is every message received, in order.
func (m *Mailbox) Messages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mail.Message(nil), m.messages...)
}
