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
)

func (SessionTable) Name() string         { return "session_table" }
func (SessionTable) PerUserKey() bool     { return true }
func (s SessionTable) DeviceLimit() Limit { return s.opt.Limit }

// sessionJoin is the one row that verification reads: the user and, if it
// exists, the token's session.
type sessionJoin struct {
	models.User
	SessID         *string
	SessRevokedAt  *time.Time
	SessExpiresAt  *time.Time
	SessLastSeenAt *time.Time
}

// Load reads the user and the token's session with one query.
func (SessionTable) Load(ctx context.Context, db *gorm.DB, uid uint64, c *Claims) (*Subject, error) {
	var row sessionJoin
	res := db.WithContext(ctx).Table("users").
		Select("users.*, sessions.id AS sess_id, sessions.revoked_at AS sess_revoked_at, sessions.expires_at AS sess_expires_at, sessions.last_seen_at AS sess_last_seen_at").
		Joins("LEFT JOIN sessions ON sessions.id = ? AND sessions.user_id = users.id", c.SID).
		Where("users.id = ?", uid).Limit(1).Scan(&row)
	if res.Error != nil {
		return nil, models.Unavailable("load session", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, gorm.ErrRecordNotFound
	}
	u := row.User
	sub := &Subject{User: &u}
	if row.SessID != nil && row.SessExpiresAt != nil && row.SessLastSeenAt != nil {
		sub.Session = &models.Session{
			ID: *row.SessID, UserID: uid, RevokedAt: row.SessRevokedAt,
			ExpiresAt: *row.SessExpiresAt, LastSeenAt: *row.SessLastSeenAt,
		}
	}
	return sub, nil
}

func (SessionTable) Check(sub *Subject, c *Claims, now time.Time) error {
	s := sub.Session
	if s == nil || s.ID != c.SID || s.RevokedAt != nil || !now.Before(s.ExpiresAt) {
		return ErrTokenRevoked
	}
	return nil
}

// live selects the user's sessions that can still be used.
func live(tx *gorm.DB, uid uint64, now time.Time) *gorm.DB {
	return tx.Model(&models.Session{}).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", uid, now)
}

func (s SessionTable) Begin(_ context.Context, tx *gorm.DB, u *models.User, c *Claims, d DeviceInfo, now time.Time) ([]string, error) {
	var evicted []string
	if lim := s.opt.Limit; lim.Max > 0 {
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
	}
	dev := newDevice(d, now)
	row := models.Session{
		ID: c.SID, UserID: u.ID, DeviceName: dev.Name, UserAgent: dev.UserAgent, IP: dev.IP,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opt.LoginTTL),
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, models.Unavailable("create session", err)
	}
	return evicted, nil
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
func (SessionTable) Touch(ctx context.Context, db *gorm.DB, sub *Subject, c *Claims, now time.Time) error {
	if sub.Session == nil || now.Sub(sub.Session.LastSeenAt) < touchEvery {
		return nil
	}
	err := db.WithContext(ctx).Model(&models.Session{}).
		Where("id = ? AND last_seen_at <= ?", c.SID, now.Add(-touchEvery)).
		Update("last_seen_at", now).Error
	if err != nil {
		return models.Unavailable("touch session", err)
	}
	return nil
}

func revokeSessions(tx *gorm.DB, uid uint64, now time.Time, cond string, args ...any) error {
	return revokeRows(tx, &models.Session{}, uid, now, cond, args...)
}
