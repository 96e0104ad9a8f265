package strategy

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/cache"
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
	successor := mac(s.refreshKeys[0], raw)
	var out *Tokens
	reused := false
	err := s.change(ctx, row.UserID, ErrTokenRevoked, func(tx *gorm.DB, u *models.User) (bool, error) {
		reused, out = false, nil
		res := tx.Model(&models.RefreshToken{}).
			Where("id = ? AND used_at IS NULL AND revoked_at IS NULL", row.ID).
			Update("used_at", now)
		if res.Error != nil {
			return false, models.Unavailable("consume refresh token", res.Error)
		}
		if res.RowsAffected == 1 {
			next := models.RefreshToken{
				TokenHash: HashSecret(successor), UserID: u.ID, FamilyID: row.FamilyID,
				DeviceName: row.DeviceName, IssuedAt: now, ExpiresAt: row.ExpiresAt,
				AAL: row.AAL, AMR: row.AMR,
			}
			if err := tx.Create(&next).Error; err != nil {
				return false, models.Unavailable("store refresh token", err)
			}
			return s.resume(ctx, tx, u, row.FamilyID, successor, row.ExpiresAt, rowAssurance(&row), now, &out)
		}
		// Someone consumed or revoked it first: decide under the lock.
		var cur models.RefreshToken
		if err := tx.Take(&cur, "id = ?", row.ID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return false, ErrTokenRevoked
			}
			return false, models.Unavailable("load refresh token", err)
		}
		if cur.RevokedAt != nil {
			return false, ErrTokenRevoked
		}
		if cur.UsedAt != nil && now.Sub(*cur.UsedAt) <= s.cfg.RefreshGrace {
			next, succ, err := s.successorRow(tx, raw)
			if err != nil {
				return false, err
			}
			return s.resume(ctx, tx, u, row.FamilyID, succ, next.ExpiresAt, rowAssurance(next), now, &out)
		}
		reused = true
		changed := false
		if lo, ok := s.strat.(Logouter); ok {
			if err := lo.Logout(ctx, tx, u, row.FamilyID, now); err != nil {
				return false, err
			}
			changed = true
		}
		if err := revokeFamilies(tx, u.ID, now, "family_id = ?", row.FamilyID); err != nil {
			return false, err
		}
		return changed, s.record(ctx, tx, now, audit.Event{Action: audit.RefreshReuse, Result: audit.Failure, UserID: u.ID, LoginID: row.FamilyID})
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, ErrRefreshReused
	}
	return out, nil
}

// RefreshInfo describes a refresh token that can still be exchanged.
type RefreshInfo struct {
	UserID uint64
	// LoginID is the login (the refresh family) it belongs to.
	LoginID             string
	IssuedAt, ExpiresAt time.Time
}

// RefreshInfo answers for introspection whether a refresh token can still
// be exchanged: its row is unused (not yet rotated), unrevoked and
// unexpired; nil when it cannot. Every way a login ends revokes its
// refresh rows in the same transaction, and deleting an account deletes
// them, so the row alone is the answer. (A token spent within
// jwt.refresh_reuse_grace still returns its successor when presented
// again, but is reported inactive: it will not be exchanged for a new
// one.)
func (s *Service) RefreshInfo(ctx context.Context, raw string) (*RefreshInfo, error) {
	if raw == "" || len(raw) > maxRefreshBytes {
		return nil, nil
	}
	var row models.RefreshToken
	err := s.db.WithContext(ctx).Take(&row, "token_hash = ?", HashSecret(raw)).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, nil
	case err != nil:
		return nil, models.Unavailable("load refresh token", err)
	}
	if row.UsedAt != nil || row.RevokedAt != nil || !s.now().Before(row.ExpiresAt) {
		return nil, nil
	}
	return &RefreshInfo{UserID: row.UserID, LoginID: row.FamilyID, IssuedAt: row.IssuedAt, ExpiresAt: row.ExpiresAt}, nil
}

// successorRow finds the live successor of a refresh token spent within
// the grace window. The successor is derived under each server secret in
// turn, so that a rotation of the secret within the window does not turn
// a retry into reuse.
func (s *Service) successorRow(tx *gorm.DB, raw string) (*models.RefreshToken, string, error) {
	for _, k := range s.refreshKeys {
		succ := mac(k, raw)
		var next models.RefreshToken
		err := tx.Take(&next, "token_hash = ?", HashSecret(succ)).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			continue
		case err != nil:
			return nil, "", models.Unavailable("load refresh token", err)
		case next.RevokedAt != nil:
			return nil, "", ErrTokenRevoked
		}
		return &next, succ, nil
	}
	return nil, "", ErrTokenRevoked
}

// resume issues the access token of a refreshed login into *out, if the
// strategy says the login is still alive. With refreshes superseding
// access tokens it records the new refresh id, which changes the user's
// state (changed).
func (s *Service) resume(ctx context.Context, tx *gorm.DB, u *models.User, loginID, refresh string, expires time.Time, a Assurance, now time.Time, out **Tokens) (changed bool, err error) {
	c := s.claims(u.ID, loginID, now, a)
	if err := s.strat.Resume(ctx, tx, u, c, now); err != nil {
		return false, err
	}
	if sp, ok := s.strat.(Superseder); ok && sp.SupersedesAccess() {
		if err := sp.Supersede(ctx, tx, u, loginID, c.RID, now); err != nil {
			return false, err
		}
		changed = true
	}
	if *out, err = s.issue(u, c, refresh, expires); err != nil {
		return false, err
	}
	return changed, s.record(ctx, tx, now, audit.Event{Action: audit.Refresh, Result: audit.Success, UserID: u.ID, LoginID: loginID})
}

// outboxRetention is how long invalidation rows are kept. An instance that
// could not read them for longer than cache.max_staleness flushes its
// cache anyway, so they only need to outlive short hiccups.
const outboxRetention = time.Hour

// Prune deletes what can no longer be used: expired or revoked refresh
// tokens and sessions, expired or used reset tokens, old outbox rows and
// audit events past their retention. The serve command runs it
// periodically.
//
// Deleting expired or revoked sessions needs no cache invalidation: a
// revoked session was announced when it was revoked, and a cached session
// carries its expiry, which Check enforces.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	st, err := s.PruneWith(ctx, PruneOptions{})
	return st.Rows, err
}

// PruneWith is Prune with options, and says how it went. The tables that
// grow with logins are pruned in primary-key ranges (see pruneRanges), so
// that no statement holds its locks for long.
func (s *Service) PruneWith(ctx context.Context, o PruneOptions) (PruneStats, error) {
	started := time.Now()
	now := s.now()
	var st PruneStats
	b := newBatcher(o, &st)
	steps := []func() (int64, error){
		func() (int64, error) {
			return pruneRanges[uint64](ctx, s.db, &models.RefreshToken{}, "expires_at < ? OR revoked_at IS NOT NULL", b, now)
		},
		func() (int64, error) {
			return pruneRanges[string](ctx, s.db, &models.Session{}, "expires_at < ? OR revoked_at IS NOT NULL", b, now)
		},
		func() (int64, error) {
			return pruneRanges[uint64](ctx, s.db, &models.ResetToken{}, "expires_at < ? OR used_at IS NOT NULL", b, now)
		},
		func() (int64, error) {
			return pruneRanges[uint64](ctx, s.db, &models.MFAChallenge{}, "expires_at < ? OR used_at IS NOT NULL", b, now)
		},
		func() (int64, error) {
			// Unconfirmed factors past their 10 minutes.
			return pruneRanges[string](ctx, s.db, &models.MFAFactor{}, "confirmed_at IS NULL AND expires_at < ?", b, now)
		},
	}
	for _, step := range steps {
		n, err := step()
		st.Rows += n
		if err != nil {
			return st, err
		}
	}
	total, err := s.pruneRest(ctx, now)
	st.Rows += total
	st.Took = time.Since(started)
	return st, err
}

// pruneRest prunes the outbox and the audit log, which have their own
// retention.
func (s *Service) pruneRest(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	n, err := cache.Prune(ctx, s.db, now.Add(-outboxRetention))
	total += n
	if err != nil {
		return total, err
	}
	if s.cfg.AuditRetention > 0 {
		n, err := audit.Prune(ctx, s.db, now.Add(-s.cfg.AuditRetention))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// rowAssurance is the assurance of the login a refresh token belongs to:
// a refresh keeps what the login had. Rows from before the columns
// existed are aal1.
func rowAssurance(r *models.RefreshToken) Assurance {
	if r.AAL == "" {
		return PasswordOnly()
	}
	return Assurance{AAL: r.AAL, AMR: strings.Split(r.AMR, ",")}
}
