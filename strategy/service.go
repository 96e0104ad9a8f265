package strategy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// MaxTokenBytes bounds what the server parses: an access token here is
// about 400 bytes, and nothing larger is read.
const MaxTokenBytes = 4096

// Config is what the Service needs besides the database and the strategy.
type Config struct {
	// Secret is the server secret, at least 32 bytes.
	Secret   []byte
	Issuer   string
	Audience string
	// AccessTTL is the lifetime of an access token.
	AccessTTL time.Duration
	// RefreshTTL is the absolute lifetime of a login's refresh family.
	RefreshTTL time.Duration
	// RefreshGrace is how long after a refresh the same refresh token still
	// returns the same successor instead of counting as reuse.
	RefreshGrace time.Duration
	// Devices is the device limit of multi_device and session_table.
	Devices Limit
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service issues, verifies, refreshes and revokes tokens under one strategy.
type Service struct {
	db     *gorm.DB
	strat  Strategy
	cfg    Config
	now    func() time.Time
	parser *jwt.Parser
	// peek reads the claims before the key is known; nothing it returns
	// is trusted until parser has verified the token.
	peek       *jwt.Parser
	refreshKey []byte
	decoyKey   []byte
}

// Tokens is what a login, refresh or password change hands the client.
type Tokens struct {
	AccessToken      string
	ExpiresIn        int64
	RefreshToken     string
	RefreshExpiresAt time.Time
	LoginID          string
}

// Principal is the verified caller of a request.
type Principal struct {
	UserID  uint64
	LoginID string
	Claims  *Claims
	// User is the row loaded during verification; nil under stateless,
	// which does not look.
	User *models.User
}

// New builds the Service for the named strategy. It checks the config and
// builds the one JWT parser every verification uses.
func New(db *gorm.DB, name string, cfg Config) (*Service, error) {
	if len(cfg.Secret) < 32 {
		return nil, fmt.Errorf("jwt secret must be at least 32 bytes, got %d", len(cfg.Secret))
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt issuer and audience must be set")
	}
	if cfg.AccessTTL <= 0 || cfg.RefreshTTL <= 0 || cfg.RefreshGrace < 0 {
		return nil, errors.New("token lifetimes must be positive")
	}
	if cfg.Devices.Max < 0 {
		return nil, errors.New("devices.max must not be negative")
	}
	strat, err := Build(name, Options{Limit: cfg.Devices, LoginTTL: cfg.RefreshTTL})
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	refreshKey, err := purposeKey(cfg.Secret, "refresh-successor")
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, strat: strat, cfg: cfg, now: now, refreshKey: refreshKey, decoyKey: randomBytes(32), peek: jwt.NewParser()}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	return s, nil
}

// Name is the running strategy's name.
func (s *Service) Name() string { return s.strat.Name() }

// Capabilities are the running strategy's capabilities.
func (s *Service) Capabilities() Capabilities { return CapabilitiesOf(s.strat) }

// AccessTTL is the access token lifetime.
func (s *Service) AccessTTL() time.Duration { return s.cfg.AccessTTL }

func (s *Service) notSupported(op string) error {
	return &NotSupportedError{Strategy: s.strat.Name(), Op: op}
}

func (s *Service) key(u *models.User) ([]byte, error) {
	if !s.strat.PerUserKey() {
		return s.cfg.Secret, nil
	}
	return userKey(s.cfg.Secret, u)
}

func (s *Service) claims(uid uint64, loginID string, now time.Time) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatUint(uid, 10),
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			ID:        NewSecret(16),
		},
		SID: loginID,
	}
}

func (s *Service) sign(u *models.User, c *Claims) (string, error) {
	key, err := s.key(u)
	if err != nil {
		return "", err
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

// Verify checks an access token under the running strategy.
func (s *Service) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" || len(raw) > MaxTokenBytes {
		return nil, ErrTokenInvalid
	}
	var unverified Claims
	if _, _, err := s.peek.ParseUnverified(raw, &unverified); err != nil {
		return nil, ErrTokenInvalid
	}
	uid, err := strconv.ParseUint(unverified.Subject, 10, 64)
	if err != nil || uid == 0 {
		return nil, ErrTokenInvalid
	}
	var sub *Subject
	var key []byte
	if s.strat.PerUserKey() {
		sub, err = s.strat.Load(ctx, s.db, uid, &unverified)
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			// Verify against a key nobody has, so that an unknown user
			// costs and answers the same as a bad signature.
			sub, key = &Subject{}, s.decoyKey
		case err != nil:
			return nil, err
		default:
			if key, err = s.key(sub.User); err != nil {
				return nil, err
			}
		}
	} else {
		sub = &Subject{}
		key = s.cfg.Secret
	}
	var c Claims
	_, err = s.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, ErrTokenExpired
	default:
		return nil, ErrTokenInvalid
	}
	if sub.User == nil && s.strat.PerUserKey() {
		return nil, ErrTokenInvalid
	}
	if c.SID == "" {
		return nil, ErrTokenInvalid
	}
	now := s.now()
	if err := s.strat.Check(sub, &c, now); err != nil {
		return nil, err
	}
	if t, ok := s.strat.(Toucher); ok {
		if err := t.Touch(ctx, s.db, sub, &c, now); err != nil {
			return nil, err
		}
	}
	return &Principal{UserID: uid, LoginID: c.SID, Claims: &c, User: sub.User}, nil
}

// Login starts a login for user uid, whose password the caller checked
// against passwordHash. If the password changed in the meantime the login
// fails as if the password were wrong.
func (s *Service) Login(ctx context.Context, uid uint64, passwordHash string, d DeviceInfo) (*Tokens, error) {
	now := s.now()
	var out *Tokens
	err := s.locked(ctx, uid, ErrInvalidCredentials, func(tx *gorm.DB, u *models.User) (err error) {
		if u.PasswordHash != passwordHash {
			return ErrInvalidCredentials
		}
		out, err = s.startLogin(ctx, tx, u, d, now)
		return err
	})
	return out, err
}

// locked runs fn in a transaction with the user's row locked. A user that
// no longer exists fails with ifGone.
func (s *Service) locked(ctx context.Context, uid uint64, ifGone error, fn func(tx *gorm.DB, u *models.User) error) error {
	return models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		u, err := models.LockUser(tx, uid)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ifGone
		}
		if err != nil {
			return err
		}
		return fn(tx, u)
	})
}

// startLogin records a new login of the locked user u and issues its tokens.
func (s *Service) startLogin(ctx context.Context, tx *gorm.DB, u *models.User, d DeviceInfo, now time.Time) (*Tokens, error) {
	loginID := NewSecret(16)
	c := s.claims(u.ID, loginID, now)
	evicted, err := s.strat.Begin(ctx, tx, u, c, d, now)
	if err != nil {
		return nil, err
	}
	for _, id := range evicted {
		if err := revokeFamilies(tx, u.ID, now, "family_id = ?", id); err != nil {
			return nil, err
		}
	}
	refresh := NewSecret(32)
	expires := now.Add(s.cfg.RefreshTTL)
	row := models.RefreshToken{
		TokenHash: HashSecret(refresh), UserID: u.ID, FamilyID: loginID,
		DeviceName: d.Name, IssuedAt: now, ExpiresAt: expires,
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, models.Unavailable("store refresh token", err)
	}
	return s.issue(u, c, refresh, expires)
}

// issue signs the access token with claims c and pairs it with the
// refresh token.
func (s *Service) issue(u *models.User, c *Claims, refresh string, refreshExpires time.Time) (*Tokens, error) {
	access, err := s.sign(u, c)
	if err != nil {
		return nil, err
	}
	return &Tokens{
		AccessToken: access, ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresAt: refreshExpires, LoginID: c.SID,
	}, nil
}

// Logout ends the caller's login: its refresh family always, its access
// tokens at once where the strategy can (Logouter).
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	now := s.now()
	return s.locked(ctx, p.UserID, nil, func(tx *gorm.DB, u *models.User) error {
		if lo, ok := s.strat.(Logouter); ok {
			if err := lo.Logout(ctx, tx, u, p.LoginID, now); err != nil {
				return err
			}
		}
		return revokeFamilies(tx, u.ID, now, "family_id = ?", p.LoginID)
	})
}

// LogoutAll ends every login of the caller.
func (s *Service) LogoutAll(ctx context.Context, p *Principal) error {
	if _, ok := s.strat.(AllRevoker); !ok {
		return s.notSupported("logout-all")
	}
	now := s.now()
	return s.locked(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) error {
		return s.RevokeEverything(ctx, tx, u, now)
	})
}

// RevokeEverything ends every login of the locked user u: the strategy's
// state where it has any, and all refresh families. Password change and
// reset call it inside their own transaction.
func (s *Service) RevokeEverything(ctx context.Context, tx *gorm.DB, u *models.User, now time.Time) error {
	if ar, ok := s.strat.(AllRevoker); ok {
		if err := ar.RevokeAll(ctx, tx, u, now); err != nil {
			return err
		}
	}
	return revokeFamilies(tx, u.ID, now, "")
}

// LogoutOthers ends every login of the caller but the calling one. Where
// the strategy tracks devices the caller's tokens keep working and it
// returns nil tokens; where it can only revoke everything, it does and
// returns fresh tokens for the caller.
func (s *Service) LogoutOthers(ctx context.Context, p *Principal, d DeviceInfo) (*Tokens, error) {
	dm, isDM := s.strat.(DeviceManager)
	_, isAll := s.strat.(AllRevoker)
	if !isDM && !isAll {
		return nil, s.notSupported("logout-others")
	}
	now := s.now()
	var out *Tokens
	err := s.locked(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (err error) {
		if isDM {
			if err := dm.RevokeOthers(ctx, tx, u, p.LoginID, now); err != nil {
				return err
			}
			return revokeFamilies(tx, u.ID, now, "family_id <> ?", p.LoginID)
		}
		if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
			return err
		}
		if err := s.RevokeEverything(ctx, tx, u, now); err != nil {
			return err
		}
		out, err = s.startLogin(ctx, tx, u, d, now)
		return err
	})
	return out, err
}

// ChangePassword sets a new password hash for the caller, whose current
// password the caller checked against oldHash, ends every login and starts
// a new one for the caller.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, oldHash, newHash string, d DeviceInfo) (*Tokens, error) {
	now := s.now()
	var out *Tokens
	err := s.locked(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (err error) {
		if u.PasswordHash != oldHash {
			return ErrInvalidCredentials
		}
		if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
			return err
		}
		if err := s.SetPassword(ctx, tx, u, newHash, now); err != nil {
			return err
		}
		out, err = s.startLogin(ctx, tx, u, d, now)
		return err
	})
	return out, err
}

// SetPassword stores a new password hash for the locked user u and ends
// every login. The new hash alone already changes the signing key; ending
// the strategy's state and the refresh families makes that hold for every
// strategy and keeps the device list honest.
func (s *Service) SetPassword(ctx context.Context, tx *gorm.DB, u *models.User, newHash string, now time.Time) error {
	u.PasswordHash = newHash
	u.UpdatedAt = now
	if err := saveUser(tx, u, "password_hash", "updated_at"); err != nil {
		return err
	}
	return s.RevokeEverything(ctx, tx, u, now)
}

// Devices lists the caller's devices.
func (s *Service) Devices(ctx context.Context, p *Principal) ([]Device, error) {
	dm, ok := s.strat.(DeviceManager)
	if !ok {
		return nil, s.notSupported("listing devices")
	}
	u := p.User
	if u == nil {
		return nil, ErrTokenInvalid
	}
	return dm.Devices(ctx, s.db, u, s.now())
}

// RevokeDevice ends the caller's device id.
func (s *Service) RevokeDevice(ctx context.Context, p *Principal, id string) error {
	dm, ok := s.strat.(DeviceManager)
	if !ok {
		return s.notSupported("revoking a device")
	}
	if id == "" || len(id) > 64 {
		return ErrNotFound
	}
	now := s.now()
	return s.locked(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) error {
		if err := dm.RevokeDevice(ctx, tx, u, id, now); err != nil {
			return err
		}
		return revokeFamilies(tx, u.ID, now, "family_id = ?", id)
	})
}

// deviceName is the device name a re-login of the caller keeps: the one
// given, else the one its current login was started with.
func (s *Service) deviceName(tx *gorm.DB, p *Principal, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	var names []string
	err := tx.Model(&models.RefreshToken{}).Where("user_id = ? AND family_id = ?", p.UserID, p.LoginID).
		Limit(1).Pluck("device_name", &names).Error
	if err != nil {
		return "", models.Unavailable("load device name", err)
	}
	if len(names) == 0 {
		return "", nil
	}
	return names[0], nil
}

// revokeFamilies marks the user's live refresh tokens revoked, all of them
// or those matching the extra condition.
func revokeFamilies(tx *gorm.DB, uid uint64, now time.Time, cond string, args ...any) error {
	return revokeRows(tx, &models.RefreshToken{}, uid, now, cond, args...)
}

// revokeRows sets revoked_at on the user's unrevoked rows of model, all of
// them or those matching the extra condition.
func revokeRows(tx *gorm.DB, model any, uid uint64, now time.Time, cond string, args ...any) error {
	q := tx.Model(model).Where("user_id = ? AND revoked_at IS NULL", uid)
	if cond != "" {
		q = q.Where(cond, args...)
	}
	if err := q.Update("revoked_at", now).Error; err != nil {
		return models.Unavailable("revoke", err)
	}
	return nil
}
