// Package strategy issues and verifies access tokens and takes them back.
//
// A Strategy is one way of revoking JWTs (see the README for the trade-offs).
// The Service wraps the chosen Strategy with what every strategy shares: the
// pinned JWT parser, the per-user signing key, the login transaction and the
// rotating refresh tokens. Optional abilities (logging out one device, all
// devices, managing devices) are small interfaces of their own; the
// capabilities that GET /api/v1/strategy reports are derived from which of
// them a strategy implements, so the two cannot disagree.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// Errors that decide a request. The routes package maps each to one HTTP
// status and error code.
var (
	ErrTokenInvalid       = errors.New("token invalid")
	ErrTokenExpired       = errors.New("token expired")
	ErrTokenRevoked       = errors.New("token revoked")
	ErrRefreshReused      = errors.New("refresh token reused")
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrNotFound           = errors.New("not found")
	ErrDeviceLimit        = errors.New("device limit reached")
	ErrNotSupported       = errors.New("not supported")
)

// NotSupportedError says which strategy cannot do what. It matches
// ErrNotSupported with errors.Is.
type NotSupportedError struct {
	Strategy string
	Op       string
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("the %s strategy does not support %s", e.Strategy, e.Op)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// Claims are the access token's claims. SID is the login id: the refresh
// family, and the device or session id of the strategies that track devices.
type Claims struct {
	jwt.RegisteredClaims
	SID string `json:"sid"`
	// Ver is token_version's counter at issue time.
	Ver *int64 `json:"ver,omitempty"`
	// IatMicros is the issue time in microseconds, for valid_date: iat has
	// whole seconds, too coarse to order a token against a cutoff set in the
	// same second.
	IatMicros int64 `json:"iat_us,omitempty"`
}

// DeviceInfo describes the client of a login.
type DeviceInfo struct {
	Name      string
	UserAgent string
	IP        string
}

// Device is one entry of a device list.
type Device struct {
	ID         string
	Name       string
	UserAgent  string
	IP         string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// Subject is what verifying one token has loaded: the user row, and for
// session_table the session row. User is nil under stateless.
type Subject struct {
	User    *models.User
	Session *models.Session
}

// Strategy is the core every revocation strategy implements.
type Strategy interface {
	Name() string
	// PerUserKey reports whether tokens are signed with the key derived from
	// the user's password hash and key salt (all but stateless).
	PerUserKey() bool
	// Load reads what verifying a token of user uid needs, with at most one
	// query. It returns gorm.ErrRecordNotFound when the user is gone.
	Load(ctx context.Context, db *gorm.DB, uid uint64, c *Claims) (*Subject, error)
	// Check decides, once the signature is verified, whether the token's
	// login is still alive. It returns ErrTokenRevoked when it is not.
	Check(sub *Subject, c *Claims, now time.Time) error
	// Begin records a new login c.SID inside the login transaction, with the
	// user row locked, and fills the strategy's claims. It returns the login
	// ids it signed out to make room (their refresh families are revoked).
	Begin(ctx context.Context, tx *gorm.DB, u *models.User, c *Claims, d DeviceInfo, now time.Time) (evicted []string, err error)
	// Resume fills the claims of an access token issued by a refresh of login
	// c.SID, or returns ErrTokenRevoked when that login was ended.
	Resume(ctx context.Context, tx *gorm.DB, u *models.User, c *Claims, now time.Time) error
}

// Logouter ends one login at once: its access tokens are rejected.
type Logouter interface {
	Logout(ctx context.Context, tx *gorm.DB, u *models.User, loginID string, now time.Time) error
}

// AllRevoker ends every login of a user at once.
type AllRevoker interface {
	RevokeAll(ctx context.Context, tx *gorm.DB, u *models.User, now time.Time) error
}

// DeviceManager lists a user's logins and ends them one by one.
type DeviceManager interface {
	Devices(ctx context.Context, db *gorm.DB, u *models.User, now time.Time) ([]Device, error)
	// RevokeDevice returns ErrNotFound when id is not a live login of u.
	RevokeDevice(ctx context.Context, tx *gorm.DB, u *models.User, id string, now time.Time) error
	RevokeOthers(ctx context.Context, tx *gorm.DB, u *models.User, keep string, now time.Time) error
}

// DeviceLimiter enforces devices.max at login.
type DeviceLimiter interface {
	DeviceLimit() Limit
}

// Toucher records when a login was last seen, at most once a minute.
type Toucher interface {
	Touch(ctx context.Context, db *gorm.DB, sub *Subject, c *Claims, now time.Time) error
}

// Limit is the device limit of multi_device and session_table.
type Limit struct {
	// Max is the most live devices per user; 0 means no limit.
	Max int
	// EvictOldest signs out the least recently seen device instead of
	// refusing the new login.
	EvictOldest bool
}

// Options are what the strategies are built with.
type Options struct {
	Limit Limit
	// LoginTTL is how long a login can live (the refresh family's lifetime).
	LoginTTL time.Duration
}

// touchEvery is how stale last_seen_at may get before a request updates it.
const touchEvery = time.Minute

// constructors maps each strategy name to its constructor, in the order the
// README and compare list them.
var constructors = []struct {
	name string
	make func(Options) Strategy
}{
	{"stateless", func(Options) Strategy { return Stateless{} }},
	{"password_key", func(Options) Strategy { return PasswordKey{} }},
	{"single_device", func(Options) Strategy { return SingleDevice{} }},
	{"multi_device", func(o Options) Strategy { return MultiDevice{opt: o} }},
	{"valid_date", func(Options) Strategy { return ValidDate{} }},
	{"token_version", func(Options) Strategy { return TokenVersion{} }},
	{"session_table", func(o Options) Strategy { return SessionTable{opt: o} }},
}

// Names lists the valid strategy names.
func Names() []string {
	out := make([]string, len(constructors))
	for i, c := range constructors {
		out[i] = c.name
	}
	return out
}

// Build returns the named strategy.
func Build(name string, o Options) (Strategy, error) {
	for _, c := range constructors {
		if c.name == name {
			return c.make(o), nil
		}
	}
	return nil, fmt.Errorf("unknown strategy %q (valid: %v)", name, Names())
}

// Capabilities are what a strategy can do, as GET /api/v1/strategy reports.
type Capabilities struct {
	LogoutThisDevice        bool `json:"logout_this_device"`
	LogoutAllDevices        bool `json:"logout_all_devices"`
	LogoutOtherDevices      bool `json:"logout_other_devices"`
	ListDevices             bool `json:"list_devices"`
	RevokeDevice            bool `json:"revoke_device"`
	DeviceLimit             bool `json:"device_limit"`
	RevokeOnPasswordChange  bool `json:"revoke_on_password_change"`
	RevokeOnAccountDeletion bool `json:"revoke_on_account_deletion"`
}

// CapabilitiesOf derives the capabilities from the interfaces s implements.
func CapabilitiesOf(s Strategy) Capabilities {
	_, lo := s.(Logouter)
	_, all := s.(AllRevoker)
	_, dm := s.(DeviceManager)
	_, lim := s.(DeviceLimiter)
	return Capabilities{
		LogoutThisDevice:        lo,
		LogoutAllDevices:        all,
		LogoutOtherDevices:      dm || all,
		ListDevices:             dm,
		RevokeDevice:            dm,
		DeviceLimit:             lim,
		RevokeOnPasswordChange:  s.PerUserKey(),
		RevokeOnAccountDeletion: s.PerUserKey(),
	}
}

// loadUser is the Load of every strategy that needs only the user row.
func loadUser(ctx context.Context, db *gorm.DB, uid uint64) (*Subject, error) {
	var u models.User
	if err := db.WithContext(ctx).Take(&u, "id = ?", uid).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, err
		}
		return nil, models.Unavailable("load user", err)
	}
	return &Subject{User: &u}, nil
}

// saveUser writes the named columns of u.
func saveUser(tx *gorm.DB, u *models.User, cols ...string) error {
	if err := tx.Model(u).Select(cols).Updates(u).Error; err != nil {
		return models.Unavailable("save user", err)
	}
	return nil
}
