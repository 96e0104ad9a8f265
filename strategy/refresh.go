package strategy

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// maxRefreshBytes bounds a refresh token before it is hashed: ours are 43
// characters.
const maxRefreshBytes = 128

// Refresh exchanges a refresh token for a new access token and a new
// refresh token (rotation). The old one is consumed by one conditional
// UPDATE, so of two concurrent refreshes only one rotates. Presenting a
// consumed token again within the grace window returns the same successor
// (its value is derived from the consumed token with a server key, so it
// need not be stored); after the window it is reuse: the whole family is
// revoked, the device signed out where the strategy can, and the answer is
// ErrRefreshReused.
func (s *Service) Refresh(ctx context.Context, raw string) (*Tokens, error) {
	if raw == "" || len(raw) > maxRefreshBytes {
		return nil, ErrTokenInvalid
	}
	var row models.RefreshToken
	if err := s.db.WithContext(ctx).Take(&row, "token_hash = ?", HashSecret(raw)).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrTokenInvalid
		}
		return nil, models.Unavailable("load refresh token", err)
	}
	now := s.now()
	if row.RevokedAt != nil {
		return nil, ErrTokenRevoked
	}
	if !now.Before(row.ExpiresAt) {
		return nil, ErrTokenExpired
	}
	successor := mac(s.refreshKey, raw)
	var out *Tokens
	reused := false
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		reused = false
		u, err := models.LockUser(tx, row.UserID)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrTokenRevoked
		}
		if err != nil {
			return err
		}
		res := tx.Model(&models.RefreshToken{}).
			Where("id = ? AND used_at IS NULL AND revoked_at IS NULL", row.ID).
			Update("used_at", now)
		if res.Error != nil {
			return models.Unavailable("consume refresh token", res.Error)
		}
		if res.RowsAffected == 1 {
			next := models.RefreshToken{
				TokenHash: HashSecret(successor), UserID: u.ID, FamilyID: row.FamilyID,
				DeviceName: row.DeviceName, IssuedAt: now, ExpiresAt: row.ExpiresAt,
			}
			if err := tx.Create(&next).Error; err != nil {
				return models.Unavailable("store refresh token", err)
			}
			out, err = s.resume(ctx, tx, u, row.FamilyID, successor, row.ExpiresAt, now)
			return err
		}
		// Someone consumed or revoked it first: decide under the lock.
		var cur models.RefreshToken
		if err := tx.Take(&cur, "id = ?", row.ID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenRevoked
			}
			return models.Unavailable("load refresh token", err)
		}
		if cur.RevokedAt != nil {
			return ErrTokenRevoked
		}
		if cur.UsedAt != nil && now.Sub(*cur.UsedAt) <= s.cfg.RefreshGrace {
			var next models.RefreshToken
			err := tx.Take(&next, "token_hash = ?", HashSecret(successor)).Error
			if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && next.RevokedAt != nil) {
				return ErrTokenRevoked
			}
			if err != nil {
				return models.Unavailable("load refresh token", err)
			}
			out, err = s.resume(ctx, tx, u, row.FamilyID, successor, next.ExpiresAt, now)
			return err
		}
		reused = true
		if lo, ok := s.strat.(Logouter); ok {
			if err := lo.Logout(ctx, tx, u, row.FamilyID, now); err != nil {
				return err
			}
		}
		return revokeFamilies(tx, u.ID, now, "family_id = ?", row.FamilyID)
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, ErrRefreshReused
	}
	return out, nil
}

// resume issues the access token of a refreshed login, if the strategy
// says the login is still alive.
func (s *Service) resume(ctx context.Context, tx *gorm.DB, u *models.User, loginID, refresh string, expires, now time.Time) (*Tokens, error) {
	c := s.claims(u.ID, loginID, now)
	if err := s.strat.Resume(ctx, tx, u, c, now); err != nil {
		return nil, err
	}
	return s.issue(u, c, refresh, expires)
}

// Prune deletes what can no longer be used: expired or revoked refresh
// tokens and sessions, expired or used reset tokens. The serve command
// runs it periodically.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.now()
	db := s.db.WithContext(ctx)
	var total int64
	steps := []struct {
		model any
		where string
	}{
		{&models.RefreshToken{}, "expires_at < ? OR revoked_at IS NOT NULL"},
		{&models.Session{}, "expires_at < ? OR revoked_at IS NOT NULL"},
		{&models.ResetToken{}, "expires_at < ? OR used_at IS NOT NULL"},
	}
	for _, st := range steps {
		res := db.Where(st.where, now).Delete(st.model)
		if res.Error != nil {
			return total, models.Unavailable("prune", res.Error)
		}
		total += res.RowsAffected
	}
	return total, nil
}
