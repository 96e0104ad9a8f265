// Package strategy issues and verifies access tokens and takes them back.
//
// A Strategy is one way of revoking JWTs (see docs/strategies.md for the trade-offs).
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
	"sync/atomic"
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
	ErrEmailTaken         = errors.New("email taken")
	ErrInvalidResetToken  = errors.New("invalid reset token")
	// ErrBusy refuses work the server bounds (tokens naming users it has
	// never heard of, beyond a rate): try again.
	ErrBusy = errors.New("busy")
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
	// RID names the refresh (or login) that issued the token, for
	// jwt.refresh_supersedes_access.
	RID string `json:"rid,omitempty"`
	// AAL is the authentication assurance level of the login (NIST SP
	// 800-63B): aal1 after a password, aal2 after a second factor or a
	// passkey. A token without it (issued before it existed) is aal1.
	AAL string `json:"aal,omitempty"`
	// AMR lists how the login authenticated (RFC 8176): ["pwd"],
	// ["pwd","otp"], ["pwd","recovery"].
	AMR []string `json:"amr,omitempty"`
}

// Assurance levels and methods of the aal and amr claims.
const (
	AAL1 = "aal1"
	AAL2 = "aal2"

	AMRPassword = "pwd"
	AMROTP      = "otp"
	// AMRRecovery is not in RFC 8176's registry: a one-time recovery code
	// stands in for the second factor, and resource servers may want to
	// tell it apart from one.
	AMRRecovery = "recovery"
)

// Assurance is how a login authenticated, carried by its tokens.
type Assurance struct {
	AAL string
	AMR []string
}

// PasswordOnly is the assurance of a login with a password alone.
func PasswordOnly() Assurance { return Assurance{AAL: AAL1, AMR: []string{AMRPassword}} }

// AssuranceOf is the assurance a token's claims carry; a token without
// one is aal1.
func AssuranceOf(c *Claims) Assurance {
	if c == nil || c.AAL == "" {
		return PasswordOnly()
	}
	return Assurance{AAL: c.AAL, AMR: c.AMR}
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

// State is what deciding on a token of one user needs, as read from the
// database: the per-user keys and the strategy's state. It is immutable
// once built, because the verification cache shares it between requests;
// the one exception is reread, an atomic.
type State struct {
	UserID uint64
	// Revision is users.revision when the state was read.
	Revision int64
	// ReadAt is when the read began (this instance's clock): a token
	// issued after it may be newer than the state.
	ReadAt time.Time
	// reread is when (unix ns) a refusal by this state last caused a
	// re-read: a per-user bound of that path.
	reread atomic.Int64
	// Found is false when the user does not exist.
	Found bool
	// keys are the user's signing keys, one per server secret (the
	// active one first), derived when the state is loaded.
	keys [][]byte
	// Current is single_device's login id.
	Current string
	// Logins are the live logins of the strategies that track devices:
	// the device map, or session_table's live sessions.
	Logins map[string]Login
	// ValidAfterMicros is valid_date's cutoff.
	ValidAfterMicros int64
	// TokenVersion is token_version's counter.
	TokenVersion int64
}

// Login is one live login in a State.
type Login struct {
	// ExpiresAt is when the login ends on its own (zero: it does not).
	ExpiresAt  time.Time
	LastSeenAt time.Time
	// RefreshID names the latest token generation of the login.
	RefreshID string
}

// Strategy is the core every revocation strategy implements.
type Strategy interface {
	Name() string
	// PerUserKey reports whether tokens are signed with the key derived from
	// the user's password hash and key salt (all but stateless).
	PerUserKey() bool
	// Snapshot fills st with the strategy's state of user u: the columns of
	// u it checks, and what else it reads (session_table: the user's live
	// sessions, with one query). Its cost must not grow with anything but
	// the number of live logins, which MaxDevices bounds.
	Snapshot(ctx context.Context, db *gorm.DB, u *models.User, st *State, now time.Time) error
	// Check decides, once the signature is verified, whether the token's
	// login is still alive. It returns ErrTokenRevoked when it is not. It
	// reads nothing but st.
	Check(st *State, c *Claims, now time.Time) error
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

// Toucher records when a login was last seen, at most once a minute, off
// the request path.
type Toucher interface {
	Touch(ctx context.Context, db *gorm.DB, uid uint64, loginID string, now time.Time) error
}

// Superseder issues a new refresh id at every refresh, so that an access
// token is accepted only if it came from the latest refresh (or the login)
// of its device: the device-tracking strategies, with
// jwt.refresh_supersedes_access on.
type Superseder interface {
	// SupersedesAccess reports whether the option is on.
	SupersedesAccess() bool
	// Supersede stores rid as the latest of login c.SID, inside the refresh
	// transaction with the user row locked.
	Supersede(ctx context.Context, tx *gorm.DB, u *models.User, loginID, rid string, now time.Time) error
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
	// Supersede: see Superseder.
	Supersede bool
}

// MaxDevices is the built-in ceiling of live logins per user of the
// strategies that track devices. With devices.max 0 ("no limit") a login
// beyond it signs out the least recently seen device, so that a script
// that logs in on every run can neither overflow the device map's column
// nor make every verification of the user slower, and its own logins
// keep working. devices.max may set a lower limit, never a higher one.
const MaxDevices = 100

// limit is the device limit in force: the configured one, or the ceiling.
func (o Options) limit() Limit {
	if o.Limit.Max > 0 {
		return o.Limit
	}
	return Limit{Max: MaxDevices, EvictOldest: true}
}

// touchEvery is how stale last_seen_at may get before a request updates it.
const touchEvery = time.Minute

// constructors maps each strategy name to its constructor, in the order the
// docs and compare list them.
var constructors = []struct {
	name string
	make func(Options) Strategy
}{
	{"stateless", func(Options) Strategy { return Stateless{} }},
	{"password_key", func(Options) Strategy { return PasswordKey{} }},
	{"single_device", func(o Options) Strategy { return SingleDevice{opt: o} }},
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
	// RefreshSupersedesAccess: a refresh ends the access token it
	// replaced (jwt.refresh_supersedes_access, device-tracking strategies).
	RefreshSupersedesAccess bool `json:"refresh_supersedes_access"`
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
		RefreshSupersedesAccess: supersedes(s),
	}
}

// supersedes reports whether s ends an access token when its login is
// refreshed.
func supersedes(s Strategy) bool {
	sp, ok := s.(Superseder)
	return ok && sp.SupersedesAccess()
}

// saveUser writes the named columns of u.
func saveUser(tx *gorm.DB, u *models.User, cols ...string) error {
	if err := tx.Model(u).Select(cols).Updates(u).Error; err != nil {
		return models.Unavailable("save user", err)
	}
	return nil
}
