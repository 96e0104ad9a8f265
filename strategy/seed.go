package strategy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/revocable/authserver/models"
)

// Seeding: the rows of a login made without a transaction, for the dev
// seed command, which loads a million accounts with multi-row INSERTs
// instead of a million login transactions. The strategy says what a login
// leaves behind, exactly as its Begin does for a user with no login yet,
// so that the running strategy accepts the seeded tokens.

// seeder fills, in memory, what Begin writes for a new login of a user
// who has none yet: the columns of u, and the rows to insert with it.
type seeder interface {
	seedBegin(u *models.User, c *Claims, d DeviceInfo, now time.Time) (*models.Session, error)
	// seedLogins is how many logins of one user stay live together.
	seedLogins() int
}

// SeededLogin is one login of a seeded user: the tokens handed to the
// client and the rows to insert with the user row.
type SeededLogin struct {
	Tokens  *Tokens
	Refresh models.RefreshToken
	// Session is session_table's row; nil for the other strategies.
	Session *models.Session
}

// SeedLogin makes a login of u in memory: it sets the columns of u the
// strategy keeps per login (single_device's current login, the device
// map) and returns the refresh row, the strategy's row if any, and the
// signed tokens. u must have its id and key salt, and no live login
// beyond MaxSeedLogins.
func (s *Service) SeedLogin(u *models.User, d DeviceInfo, now time.Time) (*SeededLogin, error) {
	sd, ok := s.strat.(seeder)
	if !ok {
		return nil, s.notSupported("seeding")
	}
	if u.ID == 0 {
		return nil, fmt.Errorf("seed login: user without an id")
	}
	loginID := NewSecret(16)
	a := PasswordOnly()
	c := s.claims(u.ID, loginID, now, a)
	sess, err := sd.seedBegin(u, c, d, now)
	if err != nil {
		return nil, err
	}
	refresh := NewSecret(32)
	expires := now.Add(s.cfg.RefreshTTL)
	t, err := s.issue(u, c, refresh, expires)
	if err != nil {
		return nil, err
	}
	return &SeededLogin{
		Tokens: t, Session: sess,
		Refresh: models.RefreshToken{
			TokenHash: HashSecret(refresh), UserID: u.ID, FamilyID: loginID,
			DeviceName: models.Truncate(d.Name, maxDeviceName), IssuedAt: now, ExpiresAt: expires,
			AAL: a.AAL, AMR: strings.Join(a.AMR, ","),
		},
	}, nil
}

// MaxSeedLogins is how many logins of one user the running strategy keeps
// live together: a seed of more would need evictions, which seeding does
// not do.
func (s *Service) MaxSeedLogins() int {
	sd, ok := s.strat.(seeder)
	if !ok {
		return 0
	}
	return sd.seedLogins()
}

// The strategies without per-login state: a login only fills claims.

func (Stateless) seedBegin(*models.User, *Claims, DeviceInfo, time.Time) (*models.Session, error) {
	return nil, nil
}
func (Stateless) seedLogins() int { return MaxDevices }

func (PasswordKey) seedBegin(*models.User, *Claims, DeviceInfo, time.Time) (*models.Session, error) {
	return nil, nil
}
func (PasswordKey) seedLogins() int { return MaxDevices }

func (t TokenVersion) seedBegin(u *models.User, c *Claims, _ DeviceInfo, now time.Time) (*models.Session, error) {
	return nil, t.Resume(context.Background(), nil, u, c, now)
}
func (TokenVersion) seedLogins() int { return MaxDevices }

func (v ValidDate) seedBegin(u *models.User, c *Claims, _ DeviceInfo, now time.Time) (*models.Session, error) {
	return nil, v.Resume(context.Background(), nil, u, c, now)
}
func (ValidDate) seedLogins() int { return MaxDevices }

// The strategies that track logins.

func (SingleDevice) seedBegin(u *models.User, c *Claims, d DeviceInfo, now time.Time) (*models.Session, error) {
	setCurrent(u, c, d, now)
	return nil, nil
}

// seedLogins: a second login would evict the first.
func (SingleDevice) seedLogins() int { return 1 }

func (m MultiDevice) seedBegin(u *models.User, c *Claims, d DeviceInfo, now time.Time) (*models.Session, error) {
	if len(u.Devices) >= m.seedLogins() {
		return nil, ErrDeviceLimit
	}
	if u.Devices == nil {
		u.Devices = models.DeviceMap{}
	}
	u.Devices[c.SID] = newDevice(d, c.RID, now)
	return nil, nil
}
func (m MultiDevice) seedLogins() int { return m.opt.limit().Max }

func (s SessionTable) seedBegin(u *models.User, c *Claims, d DeviceInfo, now time.Time) (*models.Session, error) {
	row := s.sessionRow(u, c, d, now)
	return &row, nil
}
func (s SessionTable) seedLogins() int { return s.opt.limit().Max }
