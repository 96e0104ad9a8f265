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

// Load reads nothing: that is the point of the baseline.
func (Stateless) Load(context.Context, *gorm.DB, uint64, *Claims) (*Subject, error) {
	return &Subject{}, nil
}

func (Stateless) Check(*Subject, *Claims, time.Time) error { return nil }

func (Stateless) Begin(context.Context, *gorm.DB, *models.User, *Claims, DeviceInfo, time.Time) ([]string, error) {
	return nil, nil
}

func (Stateless) Resume(context.Context, *gorm.DB, *models.User, *Claims, time.Time) error {
	return nil
}
