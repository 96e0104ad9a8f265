package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// SingleDevice keeps one state value on the user, the id of the current
// login, and carries it in the token. A token with another value is
// rejected, so a new login signs out the previous device and logout ends
// the current one at once.
type SingleDevice struct {
	opt Options
}

var (
	_ Strategy      = SingleDevice{}
	_ Logouter      = SingleDevice{}
	_ AllRevoker    = SingleDevice{}
	_ DeviceManager = SingleDevice{}
	_ Toucher       = SingleDevice{}
	_ Superseder    = SingleDevice{}
)

func (SingleDevice) Name() string             { return "single_device" }
func (SingleDevice) PerUserKey() bool         { return true }
func (s SingleDevice) SupersedesAccess() bool { return s.opt.Supersede }

func (SingleDevice) Snapshot(_ context.Context, _ *gorm.DB, u *models.User, st *State, _ time.Time) error {
	st.Current = u.State
	st.Logins = mapLogins(u.Devices)
	return nil
}

func (s SingleDevice) Check(st *State, c *Claims, now time.Time) error {
	if st.Current == "" || st.Current != c.SID {
		return ErrTokenRevoked
	}
	return checkLogin(st, c, s.opt.Supersede, now)
}

// Begin replaces the current login: whatever was signed in is evicted.
func (SingleDevice) Begin(_ context.Context, tx *gorm.DB, u *models.User, c *Claims, d DeviceInfo, now time.Time) ([]string, error) {
	var evicted []string
	if u.State != "" {
		evicted = append(evicted, u.State)
	}
	setCurrent(u, c, d, now)
	return evicted, saveUser(tx, u, "state", "devices")
}

// setCurrent makes login c.SID the one device of u (Begin and seeding).
func setCurrent(u *models.User, c *Claims, d DeviceInfo, now time.Time) {
	u.State = c.SID
	u.Devices = models.DeviceMap{c.SID: newDevice(d, c.RID, now)}
}

func (SingleDevice) Resume(_ context.Context, _ *gorm.DB, u *models.User, c *Claims, _ time.Time) error {
	if u.State == "" || u.State != c.SID {
		return ErrTokenRevoked
	}
	return nil
}

func (SingleDevice) Supersede(_ context.Context, tx *gorm.DB, u *models.User, loginID, rid string, _ time.Time) error {
	return supersedeMap(tx, u, loginID, rid)
}

func (s SingleDevice) Logout(ctx context.Context, tx *gorm.DB, u *models.User, loginID string, now time.Time) error {
	if u.State != loginID {
		return nil
	}
	return s.RevokeAll(ctx, tx, u, now)
}

func (SingleDevice) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, _ time.Time) error {
	u.State = ""
	u.Devices = nil
	return saveUser(tx, u, "state", "devices")
}

// Devices lists the one current device, if any.
func (SingleDevice) Devices(_ context.Context, _ *gorm.DB, u *models.User, _ time.Time) ([]Device, error) {
	if u.State == "" {
		return []Device{}, nil
	}
	d, ok := u.Devices[u.State]
	if !ok {
		return []Device{{ID: u.State}}, nil
	}
	return listMap(models.DeviceMap{u.State: d}), nil
}

func (s SingleDevice) RevokeDevice(ctx context.Context, tx *gorm.DB, u *models.User, id string, now time.Time) error {
	if u.State == "" || u.State != id {
		return ErrNotFound
	}
	return s.RevokeAll(ctx, tx, u, now)
}

// RevokeOthers has nothing to do: there is only ever one device.
func (SingleDevice) RevokeOthers(context.Context, *gorm.DB, *models.User, string, time.Time) error {
	return nil
}

func (SingleDevice) Touch(ctx context.Context, db *gorm.DB, uid uint64, loginID string, now time.Time) error {
	return touchMap(ctx, db, uid, loginID, now)
}
