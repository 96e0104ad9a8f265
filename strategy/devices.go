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

func newDevice(d DeviceInfo, now time.Time) models.Device {
	return models.Device{
		Name:      truncate(d.Name, maxDeviceName),
		UserAgent: truncate(d.UserAgent, maxUserAgent),
		IP:        truncate(d.IP, maxIP),
		CreatedAt: now, LastSeenAt: now,
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

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

// touchMap updates the LastSeenAt of the token's device in the user's
// device map when it is older than touchEvery. The read that found it
// stale was not locked, so it is checked again under the row lock.
func touchMap(ctx context.Context, db *gorm.DB, sub *Subject, c *Claims, now time.Time) error {
	d, ok := sub.User.Devices[c.SID]
	if !ok || now.Sub(d.LastSeenAt) < touchEvery {
		return nil
	}
	var touched *models.Device
	err := models.Tx(ctx, db, func(tx *gorm.DB) error {
		touched = nil
		u, err := models.LockUser(tx, sub.User.ID)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d, ok := u.Devices[c.SID]
		if !ok || now.Sub(d.LastSeenAt) < touchEvery {
			return nil
		}
		d.LastSeenAt = now
		u.Devices[c.SID] = d
		if err := saveUser(tx, u, "devices"); err != nil {
			return err
		}
		touched = &d
		return nil
	})
	if err != nil {
		return err
	}
	// The request goes on with the row loaded before the touch (GET
	// /sessions lists it): let it see the device as seen now, as
	// session_table's fresh read does.
	if touched != nil {
		sub.User.Devices[c.SID] = *touched
	}
	return nil
}
