package models

import (
	"errors"
	"net/mail"
	"strings"
)

// NormalizeEmail returns the one spelling of an email address that the
// users table holds: trimmed, lower-cased, at most 254 bytes, a bare
// address (no display name, no comment) with a dot in its domain. The
// unique index on users.email decides on this spelling, and the
// brute-force throttle is keyed by it, so every way in (registration,
// login, password reset, the admin CLI) must go through this one function:
// were two of them to disagree, "Ann@Example.com" could be two accounts,
// or an admin unlock could lift the lock of an address nobody logs in
// with. It lives here, with the column it describes, because every layer
// that takes an email already imports models. Its errors are messages for
// the person who typed the address.
func NormalizeEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if email == "" {
		return "", errors.New("email is required")
	}
	if len(email) > 254 {
		return "", errors.New("email must be at most 254 characters")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndex(email, "@"):], ".") {
		return "", errors.New("email is not a valid address")
	}
	return email, nil
}
