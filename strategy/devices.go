package strategy

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Field limits of a device description, so that a client cannot grow the
// user's row or the session table without bound.
const (
	maxDeviceName = 100
	maxUserAgent  = 512
	maxIP         = 64
)

func newDevice(d DeviceInfo, rid string, now time.Time) models.Device {
	return models.Device{
		Name:      models.Truncate(d.Name, maxDeviceName),
		UserAgent: models.Truncate(d.UserAgent, maxUserAgent),
		IP:        models.Truncate(d.IP, maxIP),
		CreatedAt: now, LastSeenAt: now, RefreshID: rid,
	}
}

// mapLogins is the State view of a device map.
func mapLogins(m models.DeviceMap) map[string]Login {
	out := make(map[string]Login, len(m))
	for id, d := range m {
		out[id] = Login{LastSeenAt: d.LastSeenAt, RefreshID: d.RefreshID}
	}
	return out
}

// checkLogin is the Check of the strategies that track logins: the token's
// login must be live, unexpired and, when refreshes supersede access
// tokens, the token must come from its latest refresh.
func checkLogin(st *State, c *Claims, supersede bool, now time.Time) error {
	l, ok := st.Logins[c.SID]
	if !ok || (!l.ExpiresAt.IsZero() && !now.Before(l.ExpiresAt)) || (supersede && l.RefreshID != c.RID) {
		return ErrTokenRevoked
	}
	return nil
}

// listMap turns a device map into a list, oldest login first.
func listMap(m models.DeviceMap) []Device {
	out := make([]Device, 0, len(m))
	for id, d := range m {
		out = append(out, Device{ID: id, Name: d.Name, UserAgent: d.UserAgent, IP: d.IP, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt})
	}
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// leastRecentlySeen returns the id of the device seen longest ago.
func leastRecentlySeen(m models.DeviceMap) string {
	ids := slices.Sorted(maps.Keys(m))
	return slices.MinFunc(ids, func(a, b string) int {
		return cmp.Or(m[a].LastSeenAt.Compare(m[b].LastSeenAt), m[a].CreatedAt.Compare(m[b].CreatedAt), cmp.Compare(a, b))
	})
}

// supersedeMap records rid as the latest refresh of the device loginID.
func supersedeMap(tx *gorm.DB, u *models.User, loginID, rid string) error {
	d, ok := u.Devices[loginID]
	if !ok {
		return ErrTokenRevoked
	}
	d.RefreshID = rid
	u.Devices[loginID] = d
	return saveUser(tx, u, "devices")
}

// touchMap updates the LastSeenAt of a device in the user's device map when
// it is older than touchEvery, under the row lock. It changes no revocation
// state, so it bumps no revision.
func touchMap(ctx context.Context, db *gorm.DB, uid uint64, loginID string, now time.Time) error {
	return models.Tx(ctx, db, func(tx *gorm.DB) error {
		u, err := models.LockUser(tx, uid)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d, ok := u.Devices[loginID]
		if !ok || now.Sub(d.LastSeenAt) < touchEvery {
			return nil
		}
		d.LastSeenAt = now
		u.Devices[loginID] = d
		return saveUser(tx, u, "devices")
	})
}
