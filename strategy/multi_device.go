package strategy

import (
	"context"
	"maps"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// MultiDevice keeps a map of devices on the user row (a JSON column), one
// entry per login, and carries the device id in the token. A token whose
// device is not in the map is rejected. Devices can be listed, signed out
// one by one and capped in number.
type MultiDevice struct {
	opt Options
}

var (
	_ Strategy      = MultiDevice{}
	_ Logouter      = MultiDevice{}
	_ AllRevoker    = MultiDevice{}
	_ DeviceManager = MultiDevice{}
	_ DeviceLimiter = MultiDevice{}
	_ Toucher       = MultiDevice{}
	_ Superseder    = MultiDevice{}
)

func (MultiDevice) Name() string             { return "multi_device" }
func (MultiDevice) PerUserKey() bool         { return true }
func (m MultiDevice) DeviceLimit() Limit     { return m.opt.Limit }
func (m MultiDevice) SupersedesAccess() bool { return m.opt.Supersede }

func (MultiDevice) Snapshot(_ context.Context, _ *gorm.DB, u *models.User, st *State, _ time.Time) error {
	st.Logins = mapLogins(u.Devices)
	return nil
}

func (m MultiDevice) Check(st *State, c *Claims, now time.Time) error {
	return checkLogin(st, c, m.opt.Supersede, now)
}

// Begin adds the device. Logins older than the login lifetime are dropped
// first (nothing of theirs can be valid any more), then the limit applies
// (the configured one, or the built-in ceiling MaxDevices).
func (m MultiDevice) Begin(_ context.Context, tx *gorm.DB, u *models.User, c *Claims, d DeviceInfo, now time.Time) ([]string, error) {
	devs := maps.Clone(u.Devices)
	if devs == nil {
		devs = models.DeviceMap{}
	}
	var evicted []string
	for id, dev := range devs {
		if m.opt.LoginTTL > 0 && !now.Before(dev.CreatedAt.Add(m.opt.LoginTTL)) {
			delete(devs, id)
			evicted = append(evicted, id)
		}
	}
	if lim := m.opt.limit(); len(devs) >= lim.Max {
		if !lim.EvictOldest {
			return nil, ErrDeviceLimit
		}
		for len(devs) >= lim.Max {
			id := leastRecentlySeen(devs)
			delete(devs, id)
			evicted = append(evicted, id)
		}
	}
	devs[c.SID] = newDevice(d, c.RID, now)
	u.Devices = devs
	return evicted, saveUser(tx, u, "devices")
}

func (MultiDevice) Resume(_ context.Context, _ *gorm.DB, u *models.User, c *Claims, _ time.Time) error {
	if _, ok := u.Devices[c.SID]; !ok {
		return ErrTokenRevoked
	}
	return nil
}

func (MultiDevice) Supersede(_ context.Context, tx *gorm.DB, u *models.User, loginID, rid string, _ time.Time) error {
	return supersedeMap(tx, u, loginID, rid)
}

func (MultiDevice) Logout(_ context.Context, tx *gorm.DB, u *models.User, loginID string, _ time.Time) error {
	if _, ok := u.Devices[loginID]; !ok {
		return nil
	}
	delete(u.Devices, loginID)
	return saveUser(tx, u, "devices")
}

func (MultiDevice) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, _ time.Time) error {
	u.Devices = nil
	return saveUser(tx, u, "devices")
}

func (MultiDevice) Devices(_ context.Context, _ *gorm.DB, u *models.User, _ time.Time) ([]Device, error) {
	return listMap(u.Devices), nil
}

func (MultiDevice) RevokeDevice(_ context.Context, tx *gorm.DB, u *models.User, id string, _ time.Time) error {
	if _, ok := u.Devices[id]; !ok {
		return ErrNotFound
	}
	delete(u.Devices, id)
	return saveUser(tx, u, "devices")
}

func (MultiDevice) RevokeOthers(_ context.Context, tx *gorm.DB, u *models.User, keep string, _ time.Time) error {
	maps.DeleteFunc(u.Devices, func(id string, _ models.Device) bool { return id != keep })
	return saveUser(tx, u, "devices")
}

func (MultiDevice) Touch(ctx context.Context, db *gorm.DB, uid uint64, loginID string, now time.Time) error {
	return touchMap(ctx, db, uid, loginID, now)
}
