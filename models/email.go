package models

import (
	"errors"
	"net/mail"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// maxRawEmail bounds what NormalizeEmail reads before it normalizes: NFC
// and IDNA are linear, but there is no reason to run them on a megabyte.
// Normalization can only shrink a string of this size to a canonical
// address of at most 254 bytes if the input was mostly surrounding space.
const maxRawEmail = 1024

// NormalizeEmail returns the one spelling (the canonical form) of an email
// address that the users table holds. The unique index on users.email
// decides on this spelling, byte for byte (the column's collation is
// binary on every database: see migrateEmails), the brute-force throttle
// and the reset_per_account limit are keyed by it, and a password reset is
// mailed to the account's stored address, which is in this form. So every
// way in (registration, login, password reset, the admin CLI) goes through
// this one function: were two of them to disagree, "Ann@Example.com" could
// be two accounts, or an admin unlock could lift the lock of an address
// nobody logs in with.
//
// The canonical form is:
//   - trimmed, valid UTF-8, in Unicode NFC: a precomposed "é" and "e" + a
//     combining accent are one address, as a mail client shows them;
//   - lower-cased (Unicode simple case mapping, then NFC again). Mail
//     systems treat the local part case-insensitively in practice, and
//     every account of this server always has been lower-case;
//   - the domain in its ASCII (IDNA/punycode) form: "bücher.de" is stored
//     as "xn--bcher-kva.de", the name DNS and mail servers use, so a
//     domain has one spelling whichever way it was typed;
//   - a bare address (no display name, no comment) with a dot in its
//     domain, at most 254 bytes.
//
// Look-alikes are distinct accounts, not refused: "ceo@compány.com" is
// "ceo@xn--compny-wta.com", another domain with its own mailboxes, and
// "cëo@company.com" another mailbox. Neither can reach the account of
// "ceo@company.com": lookups compare bytes, and reset mail goes to the
// stored address only (the GitHub 2019 takeover mailed the typed one).
//
// It lives here, with the column it describes, because every layer that
// takes an email already imports models. Its errors are messages for the
// person who typed the address.
func NormalizeEmail(raw string) (string, error) {
	email := strings.TrimSpace(raw)
	if email == "" {
		return "", errors.New("email is required")
	}
	if len(email) > maxRawEmail {
		return "", errors.New("email must be at most 254 characters")
	}
	if !utf8.ValidString(email) {
		return "", errors.New("email is not a valid address")
	}
	email = norm.NFC.String(strings.ToLower(norm.NFC.String(email)))
	at := strings.LastIndex(email, "@")
	if at < 0 {
		return "", errors.New("email is not a valid address")
	}
	// A punycode label ("xn--") is checked like a Unicode one, so that a
	// domain has one spelling: the Unicode and the ASCII form of one name
	// both give the ASCII form, and a label that is not valid punycode is
	// refused rather than stored.
	if domain := email[at+1:]; !isASCII(domain) || strings.Contains(domain, "xn--") {
		ascii, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			return "", errors.New("email domain is not a valid internationalized domain name")
		}
		email = email[:at+1] + ascii
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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
