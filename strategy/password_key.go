package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// PasswordKey signs each user's tokens with a key derived from the server
// secret, the user's password hash and a per-user key salt. A password
// change or reset, or deleting the account, changes or removes the key and
// so kills every token of the user; logout-all rotates the salt. It stores
// nothing per token and cannot end one device alone.
type PasswordKey struct{}

var (
	_ Strategy   = PasswordKey{}
	_ AllRevoker = PasswordKey{}
)

func (PasswordKey) Name() string     { return "password_key" }
func (PasswordKey) PerUserKey() bool { return true }

// Snapshot has nothing to add to the key, derived by the Service.
func (PasswordKey) Snapshot(context.Context, *gorm.DB, *models.User, *State, time.Time) error {
	return nil
}

// Check has nothing to add: a token whose signature verifies under the
// user's current key is valid.
func (PasswordKey) Check(*State, *Claims, time.Time) error { return nil }

func (PasswordKey) Begin(context.Context, *gorm.DB, *models.User, *Claims, DeviceInfo, time.Time) ([]string, error) {
	return nil, nil
}

func (PasswordKey) Resume(context.Context, *gorm.DB, *models.User, *Claims, time.Time) error {
	return nil
}

// RevokeAll rotates the key salt: every token signed before fails.
func (PasswordKey) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, _ time.Time) error {
	return rotateSalt(tx, u)
}

// rotateSalt gives u a new key salt and so a new signing key.
func rotateSalt(tx *gorm.DB, u *models.User) error {
	u.KeySalt = NewKeySalt()
	return saveUser(tx, u, "key_salt")
}
