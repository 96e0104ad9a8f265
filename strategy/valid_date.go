package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// ValidDate keeps a cutoff time on the user: tokens issued before it are
// rejected. logout-all (and a password change) move the cutoff to now. It
// cannot end one device alone.
//
// The rule, to the microsecond: a token is valid when its iat_us claim is at
// or after the cutoff. Revoking sets the cutoff to now+1µs, and a login
// issues iat_us = max(now, cutoff), both under the user's row lock, so a
// token issued before a revocation is always rejected and one issued after
// it always accepted, even within the same second or microsecond.
type ValidDate struct{}

var (
	_ Strategy   = ValidDate{}
	_ AllRevoker = ValidDate{}
)

func (ValidDate) Name() string     { return "valid_date" }
func (ValidDate) PerUserKey() bool { return true }

func (ValidDate) Snapshot(_ context.Context, _ *gorm.DB, u *models.User, st *State, _ time.Time) error {
	st.ValidAfterMicros = u.ValidAfterMicros
	return nil
}

func (ValidDate) Check(st *State, c *Claims, _ time.Time) error {
	if c.IatMicros <= 0 || c.IatMicros < st.ValidAfterMicros {
		return ErrTokenRevoked
	}
	return nil
}

func (v ValidDate) Begin(ctx context.Context, tx *gorm.DB, u *models.User, c *Claims, _ DeviceInfo, now time.Time) ([]string, error) {
	return nil, v.Resume(ctx, tx, u, c, now)
}

func (ValidDate) Resume(_ context.Context, _ *gorm.DB, u *models.User, c *Claims, now time.Time) error {
	c.IatMicros = max(now.UnixMicro(), u.ValidAfterMicros)
	return nil
}

func (ValidDate) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, now time.Time) error {
	u.ValidAfterMicros = max(now.UnixMicro(), u.ValidAfterMicros) + 1
	return saveUser(tx, u, "valid_after_micros")
}
