// Package audit records security events (logins, refreshes, revocations,
// admin actions) in the audit_events table, in the same transaction as the
// change each one records, and reads a user's own events back for GET
// /api/v1/me/events. It is a package because three layers write events:
// the token service (inside its transactions), the HTTP layer (failed and
// throttled logins, which change nothing) and the admin CLI.
//
// An event never holds a token, a password or a reset token: Event has no
// field for one, and Details takes only what the call sites put there
// (counts, reasons, device names).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Actions.
const (
	Register               = "register"
	Login                  = "login"
	Refresh                = "refresh"
	RefreshReuse           = "refresh_reuse_detected"
	Logout                 = "logout"
	LogoutAll              = "logout_all"
	LogoutOthers           = "logout_others"
	DeviceRevoked          = "device_revoked"
	PasswordChanged        = "password_changed"
	PasswordResetRequested = "password_reset_requested"
	PasswordResetCompleted = "password_reset_completed"
	EmailVerified          = "email_verified"
	EmailChangeRequested   = "email_change_requested"
	EmailChanged           = "email_changed"
	AccountDeleted         = "account_deleted"
	AdminUserCreated       = "admin_user_created"
	AdminUserDeleted       = "admin_user_deleted"
	AdminUnlock            = "admin_unlock"
	AdminSessionsRevoked   = "admin_sessions_revoked"
	AdminMFAReset          = "admin_mfa_reset"
	// Second factor.
	MFAChallenged          = "mfa_challenged"
	MFAEnrolled            = "mfa_enrolled"
	MFAConfirmed           = "mfa_confirmed"
	MFARemoved             = "mfa_removed"
	MFAFailed              = "mfa_failed"
	MFARecoveryUsed        = "mfa_recovery_code_used"
	MFARecoveryRegenerated = "mfa_recovery_codes_regenerated"
)

// Results.
const (
	Success   = "success"
	Failure   = "failure"
	Throttled = "throttled"
)

// Meta describes the request an event came from.
type Meta struct {
	IP, UserAgent, RequestID string
}

type metaKey struct{}

// WithMeta returns ctx carrying m; the HTTP layer sets it once per request.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the request metadata ctx carries (empty when none: an
// admin command).
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// Event is one security event.
type Event struct {
	Action, Result string
	// UserID is 0 when no account is concerned (an unknown email).
	UserID  uint64
	LoginID string
	// Details is a small JSON object; never a secret.
	Details map[string]any
}

// Field limits, as in the table.
const (
	maxUserAgent = 512
	maxIP        = 64
	maxDetails   = 2048
)

// Record writes ev at time now inside tx, with the metadata of ctx.
func Record(ctx context.Context, tx *gorm.DB, now time.Time, ev Event) error {
	m := MetaFrom(ctx)
	row := models.AuditEvent{
		CreatedAt: now.UTC(), Action: ev.Action, Result: ev.Result, LoginID: ev.LoginID,
		IP: models.Truncate(m.IP, maxIP), UserAgent: models.Truncate(m.UserAgent, maxUserAgent),
		RequestID: models.Truncate(m.RequestID, 64),
	}
	if ev.UserID != 0 {
		uid := ev.UserID
		row.UserID = &uid
	}
	if len(ev.Details) > 0 {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return fmt.Errorf("audit details: %w", err)
		}
		if len(b) > maxDetails {
			b = []byte(`{"truncated":true}`)
		}
		row.Details = string(b)
	}
	if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
		return models.Unavailable("record audit event", err)
	}
	return nil
}

// List returns the newest events of user uid, at most limit.
func List(ctx context.Context, db *gorm.DB, uid uint64, limit int) ([]models.AuditEvent, error) {
	var out []models.AuditEvent
	err := db.WithContext(ctx).Where("user_id = ?", uid).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, models.Unavailable("list audit events", err)
	}
	return out, nil
}

// Prune deletes the events older than before.
func Prune(ctx context.Context, db *gorm.DB, before time.Time) (int64, error) {
	res := db.WithContext(ctx).Where("created_at < ?", before.UTC()).Delete(&models.AuditEvent{})
	if res.Error != nil {
		return 0, models.Unavailable("prune audit events", res.Error)
	}
	return res.RowsAffected, nil
}
