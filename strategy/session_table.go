package strategy

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// SessionTable keeps one row per login in the sessions table, like a
// classic session store behind a JWT: the session id rides in the token and
// verification requires a live row. It is the most flexible strategy and
// the one whose table grows with logins; expired and revoked rows are
// pruned by the periodic job.
type SessionTable struct {
	opt Options
}

var (
	_ Strategy      = SessionTable{}
	_ Logouter      = SessionTable{}
	_ AllRevoker    = SessionTable{}
	_ DeviceManager = SessionTable{}
	_ DeviceLimiter = SessionTable{}
	_ Toucher       = SessionTable{}
	_ Superseder    = SessionTable{}
)

func (SessionTable) Name() string             { return "session_table" }
func (SessionTable) PerUserKey() bool         { return true }
func (s SessionTable) DeviceLimit() Limit     { return s.opt.Limit }
func (s SessionTable) SupersedesAccess() bool { return s.opt.Supersede }

// Snapshot reads the user's live sessions with one query; MaxDevices
// bounds how many there are.
func (SessionTable) Snapshot(ctx context.Context, db *gorm.DB, u *models.User, st *State, now time.Time) error {
	var rows []models.Session
	err := live(db.WithContext(ctx), u.ID, now).Select("id", "expires_at", "last_seen_at", "refresh_id").Find(&rows).Error
	if err != nil {
		return models.Unavailable("load sessions", err)
	}
	st.Logins = make(map[string]Login, len(rows))
	for _, r := range rows {
		st.Logins[r.ID] = Login{ExpiresAt: r.ExpiresAt, LastSeenAt: r.LastSeenAt, RefreshID: r.RefreshID}
	}
	return nil
}

func (s SessionTable) Check(st *State, c *Claims, now time.Time) error {
	return checkLogin(st, c, s.opt.Supersede, now)
}

// live selects the user's sessions that can still be used.
func live(tx *gorm.DB, uid uint64, now time.Time) *gorm.DB {
	return tx.Model(&models.Session{}).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", uid, now)
}

func (s SessionTable) Begin(_ context.Context, tx *gorm.DB, u *models.User, c *Claims, d DeviceInfo, now time.Time) ([]string, error) {
	var evicted []string
	lim := s.opt.limit()
	var n int64
	if err := live(tx, u.ID, now).Count(&n).Error; err != nil {
		return nil, models.Unavailable("count sessions", err)
	}
	if n >= int64(lim.Max) {
		if !lim.EvictOldest {
			return nil, ErrDeviceLimit
		}
		var ids []string
		err := live(tx, u.ID, now).Order("last_seen_at, created_at, id").
			Limit(int(n)-lim.Max+1).Pluck("id", &ids).Error
		if err != nil {
			return nil, models.Unavailable("find oldest sessions", err)
		}
		if err := tx.Model(&models.Session{}).Where("id IN ?", ids).Update("revoked_at", now).Error; err != nil {
			return nil, models.Unavailable("evict sessions", err)
		}
		evicted = ids
	}
	row := s.sessionRow(u, c, d, now)
	if err := tx.Create(&row).Error; err != nil {
		return nil, models.Unavailable("create session", err)
	}
	return evicted, nil
}

// sessionRow is the session row of a new login c.SID of u (Begin and
// seeding).
func (s SessionTable) sessionRow(u *models.User, c *Claims, d DeviceInfo, now time.Time) models.Session {
	dev := newDevice(d, c.RID, now)
	return models.Session{
		ID: c.SID, UserID: u.ID, DeviceName: dev.Name, UserAgent: dev.UserAgent, IP: dev.IP,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opt.LoginTTL), RefreshID: c.RID,
	}
}

func (SessionTable) Resume(_ context.Context, tx *gorm.DB, u *models.User, c *Claims, now time.Time) error {
	var n int64
	if err := live(tx, u.ID, now).Where("id = ?", c.SID).Count(&n).Error; err != nil {
		return models.Unavailable("load session", err)
	}
	if n == 0 {
		return ErrTokenRevoked
	}
	return nil
}

func (SessionTable) Supersede(_ context.Context, tx *gorm.DB, u *models.User, loginID, rid string, now time.Time) error {
	res := live(tx, u.ID, now).Where("id = ?", loginID).Update("refresh_id", rid)
	if res.Error != nil {
		return models.Unavailable("supersede session", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrTokenRevoked
	}
	return nil
}

func (SessionTable) Logout(_ context.Context, tx *gorm.DB, u *models.User, loginID string, now time.Time) error {
	return revokeSessions(tx, u.ID, now, "id = ?", loginID)
}

func (SessionTable) RevokeAll(_ context.Context, tx *gorm.DB, u *models.User, now time.Time) error {
	return revokeSessions(tx, u.ID, now, "")
}

func (SessionTable) Devices(ctx context.Context, db *gorm.DB, u *models.User, now time.Time) ([]Device, error) {
	var rows []models.Session
	if err := live(db.WithContext(ctx), u.ID, now).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, models.Unavailable("list sessions", err)
	}
	out := make([]Device, len(rows))
	for i, r := range rows {
		out[i] = Device{ID: r.ID, Name: r.DeviceName, UserAgent: r.UserAgent, IP: r.IP, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt}
	}
	return out, nil
}

func (SessionTable) RevokeDevice(_ context.Context, tx *gorm.DB, u *models.User, id string, now time.Time) error {
	res := live(tx, u.ID, now).Where("id = ?", id).Update("revoked_at", now)
	if res.Error != nil {
		return models.Unavailable("revoke session", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

func (SessionTable) RevokeOthers(_ context.Context, tx *gorm.DB, u *models.User, keep string, now time.Time) error {
	return revokeSessions(tx, u.ID, now, "id <> ?", keep)
}

// Touch moves last_seen_at forward with one conditional UPDATE, at most
// once a minute per session.
func (SessionTable) Touch(ctx context.Context, db *gorm.DB, uid uint64, loginID string, now time.Time) error {
	err := db.WithContext(ctx).Model(&models.Session{}).
		Where("id = ? AND user_id = ? AND last_seen_at <= ?", loginID, uid, now.Add(-touchEvery)).
		Update("last_seen_at", now).Error
	if err != nil {
		return models.Unavailable("touch session", err)
	}
	return nil
}

func revokeSessions(tx *gorm.DB, uid uint64, now time.Time, cond string, args ...any) error {
	return revokeRows(tx, &models.Session{}, uid, now, cond, args...)
}
