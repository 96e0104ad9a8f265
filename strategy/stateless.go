package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Stateless is the plain-JWT baseline: tokens are signed with the server
// secret and verification reads nothing but the token. Nothing can end an
// access token before it expires; only refresh tokens can be revoked.
type Stateless struct{}

var _ Strategy = Stateless{}

func (Stateless) Name() string     { return "stateless" }
func (Stateless) PerUserKey() bool { return false }

// Snapshot is never called: that is the point of the baseline.
func (Stateless) Snapshot(context.Context, *gorm.DB, *models.User, *State, time.Time) error {
	return nil
}

func (Stateless) Check(*State, *Claims, time.Time) error { return nil }

func (Stateless) Begin(context.Context, *gorm.DB, *models.User, *Claims, DeviceInfo, time.Time) ([]string, error) {
	return nil, nil
}

func (Stateless) Resume(context.Context, *gorm.DB, *models.User, *Claims, time.Time) error {
	return nil
}
