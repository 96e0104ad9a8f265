// Package mailbox holds Mailbox, a password-reset mailer that keeps what it
// is given instead of sending it.
//
// The routes and cluster tests and compare's reset scenario need the reset
// token a real user would find in their mail; this is the one place that
// catches it.
package mailbox

import (
	"context"
	"sync"
)

// Mailbox keeps the last reset token sent to each address and counts the
// mails per address. Its zero value is ready; it is safe for concurrent use.
type Mailbox struct {
	mu     sync.Mutex
	tokens map[string]string
	sent   map[string]int
}

// SendPasswordReset keeps token as the last one sent to email.
func (m *Mailbox) SendPasswordReset(_ context.Context, email, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[string]string{}
		m.sent = map[string]int{}
	}
	m.tokens[email] = token
	m.sent[email]++
	return nil
}

// Last is the last token sent to email, or "" when none was.
func (m *Mailbox) Last(email string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[email]
}

// Sent is how many reset mails went to email.
func (m *Mailbox) Sent(email string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[email]
}
