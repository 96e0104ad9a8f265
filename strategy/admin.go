package strategy

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/models"
)

// What an administrator does to accounts (the admin CLI, through
// authserver.Server). Every change goes through change(), like the HTTP
// paths: the user's revision, the outbox row and an admin audit event are
// written in the same transaction, so that every running instance, in
// any process, learns of it through the outbox within
// cache.max_staleness.

// UserByEmail is the account of a normalized email (models.NormalizeEmail),
// or ErrNotFound.
func (s *Service) UserByEmail(ctx context.Context, email string) (*models.User, error) {
	var u models.User
	err := s.db.WithContext(ctx).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, models.Unavailable("load user", err)
	}
	return &u, nil
}

// Users lists accounts by id, those after afterID, at most limit.
func (s *Service) Users(ctx context.Context, afterID uint64, limit int) ([]models.User, error) {
	var out []models.User
	err := s.db.WithContext(ctx).Where("id > ?", afterID).Order("id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, models.Unavailable("list users", err)
	}
	return out, nil
}

// AdminCreateUser creates an account, as Register does, recording an
// admin event instead of a registration.
func (s *Service) AdminCreateUser(ctx context.Context, email, passwordHash string) (*models.User, error) {
	return s.createUser(ctx, email, passwordHash, audit.AdminUserCreated)
}

// AdminDeleteUser deletes account uid and everything of it, as
// DeleteAccount does, without a password. The admin event is kept
// without the user id, like the owner's own deletion.
func (s *Service) AdminDeleteUser(ctx context.Context, uid uint64) error {
	now := s.now()
	return s.change(ctx, uid, ErrNotFound, func(tx *gorm.DB, u *models.User) (bool, error) {
		if err := models.DeleteUser(tx, u.ID); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{Action: audit.AdminUserDeleted, Result: audit.Success})
	})
}

// AdminSessions lists the live logins of user uid: the strategy's devices
// where it tracks them, else the live refresh families (a login whose
// refresh token still works).
func (s *Service) AdminSessions(ctx context.Context, uid uint64) ([]Device, error) {
	u, err := s.User(ctx, uid)
	if errors.Is(err, ErrTokenInvalid) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if dm, ok := s.strat.(DeviceManager); ok {
		return dm.Devices(ctx, s.db, u, s.now())
	}
	var rows []models.RefreshToken
	err = s.db.WithContext(ctx).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", uid, s.now().UTC()).
		Order("issued_at").Find(&rows).Error
	if err != nil {
		return nil, models.Unavailable("list refresh tokens", err)
	}
	byID := map[string]*Device{}
	live := map[string]bool{}
	for _, r := range rows {
		d, ok := byID[r.FamilyID]
		if !ok {
			d = &Device{ID: r.FamilyID, Name: r.DeviceName, CreatedAt: r.IssuedAt}
			byID[r.FamilyID] = d
		}
		d.LastSeenAt = r.IssuedAt
		if r.UsedAt == nil {
			live[r.FamilyID] = true
		}
	}
	out := make([]Device, 0, len(live))
	for id := range live {
		out = append(out, *byID[id])
	}
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// AdminRevoke ends logins of user uid: every one (all), or the login
// loginID. It goes through the strategy like the HTTP paths: all ends the
// strategy's state where it has any (logout-all) and every refresh
// family; one login ends the device where the strategy tracks devices,
// and its refresh family always. accessEnded reports whether the access
// tokens of those logins are rejected from now on (within
// cache.max_staleness on other instances), or live on until they expire
// because the strategy cannot end them (stateless; one login under the
// strategies that cannot end one device alone). ErrNotFound when uid, or
// loginID as a live login of uid, does not exist.
func (s *Service) AdminRevoke(ctx context.Context, uid uint64, loginID string, all bool) (accessEnded bool, err error) {
	if !all && (loginID == "" || len(loginID) > 64) {
		return false, ErrNotFound
	}
	dm, isDM := s.strat.(DeviceManager)
	_, isAll := s.strat.(AllRevoker)
	now := s.now()
	err = s.change(ctx, uid, ErrNotFound, func(tx *gorm.DB, u *models.User) (bool, error) {
		details := map[string]any{"all": true}
		if all {
			if err := s.revokeEverything(ctx, tx, u, now); err != nil {
				return false, err
			}
			accessEnded = isAll
		} else {
			details = map[string]any{"login_id": loginID}
			if isDM {
				if err := dm.RevokeDevice(ctx, tx, u, loginID, now); err != nil {
					return false, err
				}
			} else {
				var n int64
				err := tx.Model(&models.RefreshToken{}).
					Where("user_id = ? AND family_id = ? AND revoked_at IS NULL AND expires_at > ?", u.ID, loginID, now.UTC()).
					Count(&n).Error
				if err != nil {
					return false, models.Unavailable("load refresh tokens", err)
				}
				if n == 0 {
					return false, ErrNotFound
				}
			}
			if err := revokeFamilies(tx, u.ID, now, "family_id = ?", loginID); err != nil {
				return false, err
			}
			accessEnded = isDM
		}
		return true, s.record(ctx, tx, now, audit.Event{
			Action: audit.AdminSessionsRevoked, Result: audit.Success, UserID: u.ID, Details: details,
		})
	})
	if err != nil {
		return false, err
	}
	return accessEnded, nil
}

// AdminRecord writes an admin event that changes nothing else (an unlock).
func (s *Service) AdminRecord(ctx context.Context, ev audit.Event) error {
	return audit.Record(ctx, s.db, s.now(), ev)
}
