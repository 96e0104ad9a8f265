package strategy

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/revocable/authserver/models"
)

// userKey derives the HMAC key of u's access tokens under the named
// strategy:
//
//	HKDF-SHA256(secret, salt = u.KeySalt, info = "authserver access-token v2" | strategy | user id | password hash)
//
// A new password hash or key salt gives a new key, so every token signed
// before is rejected without any list of revoked tokens; a deleted user has
// no key at all.
//
// The strategy is in the key because the strategies keep their revocations
// in different places: a token logged out under session_table (its row
// deleted) would otherwise verify again after a restart under
// password_key on the same database, which never looks at that table. So
// a strategy switch ends every access token issued before it (the clients
// refresh: refresh tokens are rows, not signatures). The kid does not
// change (it names the server secret alone): the same strategy on the same
// secret derives the same keys across releases and restarts. v1 keys (no
// strategy) ended with the release that introduced v2: a one-time
// re-login of access tokens at that upgrade.
func userKey(secret []byte, strategy string, u *models.User) ([]byte, error) {
	info := "authserver access-token v2\x00" + strategy + "\x00" + strconv.FormatUint(u.ID, 10) + "\x00" + u.PasswordHash
	k, err := hkdf.Key(sha256.New, secret, u.KeySalt, info, 32)
	if err != nil {
		return nil, fmt.Errorf("derive user key: %w", err)
	}
	return k, nil
}

// purposeKey derives a server-wide key for one purpose from the secret.
func purposeKey(secret []byte, purpose string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, "authserver "+purpose+" v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive %s key: %w", purpose, err)
	}
	return k, nil
}

// NewKeySalt returns a fresh random key salt for a user.
func NewKeySalt() []byte { return randomBytes(16) }

// NewSecret returns a random URL-safe string of n random bytes: login ids,
// refresh and reset tokens.
func NewSecret(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

// HashSecret is how refresh and reset tokens are stored: SHA-256, so a
// database leak does not leak usable tokens.
func HashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (and crashes the program
	// irrecoverably instead) since Go 1.24.
	_, _ = rand.Read(b)
	return b
}

// mac is HMAC-SHA256 of msg, base64url-encoded.
func mac(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// DeriveKey derives a server-wide key for one purpose from a server
// secret (HKDF-SHA256), for the packages that key hashes of what they
// store (rate limits, brute-force counters).
func DeriveKey(secret []byte, purpose string) ([]byte, error) { return purposeKey(secret, purpose) }
