package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// TokenVersion keeps a counter on the user and copies it into every token;
// logout-all increments it, so every older token no longer matches. It
// cannot end one device alone.
type TokenVersion struct{}

var (
	_ Strategy   = TokenVersion{}
	_ AllRevoker = TokenVersion{}
)

func (TokenVersion) Name() string     { return "token_version" }
func (TokenVersion) PerUserKey() bool { return true }

func (TokenVersion) Snapshot(_ context.Context, _ *gorm.DB, u *models.User, st *State, _ time.Time) error {
	st.TokenVersion = u.TokenVersion
	return nil
}

func (TokenVersion) Check(st *State, c *Claims, _ time.Time) error {
	if c.Ver == nil || *c.Ver != st.TokenVersion {
		return ErrTokenRevoked
	}
	return nil
}

func (t TokenVersion) Begin(ctx context.Context, tx *gorm.DB, u *models.User, c *Claims, _ DeviceInfo, now time.Time) ([]string, error) {
	return nil, t.Resume(ctx, tx, u, c, now)
}

func (TokenVersion) Resume(_ context.Context, _ *gorm.DB, u *models.User, c *Claims, _ time.Time) error {
	v := u.TokenVersion
	c.Ver = &v
	return nil
}

func (TokenVersion) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, _ time.Time) error {
	u.TokenVersion++
	return saveUser(tx, u, "token_version")
}
