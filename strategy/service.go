package strategy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/cache"
	"github.com/revocable/authserver/models"
)

// MaxTokenBytes bounds what the server parses: an access token here is
// about 450 bytes, and nothing larger is read.
const MaxTokenBytes = 4096

// Config is what the Service needs besides the database and the strategy.
type Config struct {
	// Secret is the active server secret, at least 32 bytes: it signs.
	Secret []byte
	// PreviousSecrets only verify: tokens signed before a rotation.
	PreviousSecrets [][]byte
	Issuer          string
	Audience        string
	// AccessTTL is the lifetime of an access token.
	AccessTTL time.Duration
	// RefreshTTL is the absolute lifetime of a login's refresh family.
	RefreshTTL time.Duration
	// RefreshGrace is how long after a refresh the same refresh token still
	// returns the same successor instead of counting as reuse.
	RefreshGrace time.Duration
	// Devices is the device limit of multi_device and session_table.
	Devices Limit
	// RefreshSupersedesAccess: see Superseder.
	RefreshSupersedesAccess bool
	// MFAEnrollRevokesOthers: confirming or removing a second factor ends
	// the account's other logins (mfa.enroll_revokes_others).
	MFAEnrollRevokesOthers bool
	// AuditRetention is how long audit events are kept; 0 keeps them.
	AuditRetention time.Duration
	// Cache, when set, holds users' verification state between requests;
	// the caller keeps it exact with a cache.Feed.
	Cache *cache.Cache[*State]
	// Announce, when set, tells the other instances about a committed
	// change of a user's state (cache.Feed.Publish).
	Announce func(uid uint64, rev int64)
	Log      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// serverSecret is one server secret with the kid that names it in token
// headers.
type serverSecret struct {
	kid string
	key []byte
}

// Service issues, verifies, refreshes and revokes tokens under one strategy.
type Service struct {
	db      *gorm.DB
	strat   Strategy
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	parser  *jwt.Parser
	secrets []serverSecret
	// refreshKeys derive a spent refresh token's successor, one per
	// secret, the active one first.
	refreshKeys [][]byte
	decoyKey    []byte
	cache       *cache.Cache[*State]
	flight      singleflight.Group
	// probe bounds the database lookups of user ids above the highest
	// known one: a flood of tokens naming random users.
	probe *rate.Limiter
	// reread bounds, over all users, the re-reads of a cached state that
	// refused a token that may be newer than it (see Verify): forged
	// tokens reach that path.
	reread  *rate.Limiter
	touches *touchQueue
	// mfaKeys seal TOTP secrets and key recovery-code hashes, one per
	// server secret, the active one first.
	mfaKeys []mfaKey
	// afterFill, when set (tests), runs in a shared fill after its Put.
	afterFill func()
}

// Tokens is what a login, refresh or password change hands the client.
type Tokens struct {
	AccessToken      string
	ExpiresIn        int64
	RefreshToken     string
	RefreshExpiresAt time.Time
	LoginID          string
	// MFA, when set, is the answer of a login with the right password to
	// an account with a second factor: no tokens, a challenge to answer
	// with POST /auth/mfa/verify.
	MFA *MFAChallenge
}

// Principal is the verified caller of a request.
type Principal struct {
	UserID  uint64
	LoginID string
	Claims  *Claims
}

// New builds the Service for the named strategy. It checks the config and
// builds the one JWT parser every verification uses.
func New(db *gorm.DB, name string, cfg Config) (*Service, error) {
	if len(cfg.Secret) < 32 {
		return nil, fmt.Errorf("jwt secret must be at least 32 bytes, got %d", len(cfg.Secret))
	}
	for i, p := range cfg.PreviousSecrets {
		if len(p) < 32 {
			return nil, fmt.Errorf("previous jwt secret %d must be at least 32 bytes, got %d", i, len(p))
		}
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt issuer and audience must be set")
	}
	if cfg.AccessTTL <= 0 || cfg.RefreshTTL <= 0 || cfg.RefreshGrace < 0 {
		return nil, errors.New("token lifetimes must be positive")
	}
	if cfg.Devices.Max < 0 || cfg.Devices.Max > MaxDevices {
		return nil, fmt.Errorf("devices.max must be between 0 and %d", MaxDevices)
	}
	strat, err := Build(name, Options{Limit: cfg.Devices, LoginTTL: cfg.RefreshTTL, Supersede: cfg.RefreshSupersedesAccess})
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db: db, strat: strat, cfg: cfg, now: now, log: log, decoyKey: randomBytes(32), cache: cfg.Cache,
		probe: rate.NewLimiter(20, 20), reread: rate.NewLimiter(rereadRate, rereadRate),
	}
	for _, sec := range append([][]byte{cfg.Secret}, cfg.PreviousSecrets...) {
		rk, err := purposeKey(sec, "refresh-successor")
		if err != nil {
			return nil, err
		}
		s.secrets = append(s.secrets, serverSecret{kid: KeyID(sec), key: sec})
		s.refreshKeys = append(s.refreshKeys, rk)
	}
	if s.mfaKeys, err = newMFAKeys(s.secrets); err != nil {
		return nil, err
	}
	if t, ok := strat.(Toucher); ok {
		s.touches = newTouchQueue(t, db, log)
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		// One spelling per token: no second base64 spelling of the same
		// signature (unused low bits) verifies.
		jwt.WithStrictDecoding(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	return s, nil
}

// KeyID names a server secret in the kid header of the tokens it signs:
// 9 bytes of a hash, which reveal nothing of a 32-byte random secret. Its
// length is part of every token issued: a change would make the tokens of
// instances on either side of a rolling upgrade unknown to the others.
func KeyID(secret []byte) string {
	h := sha256.Sum256(append([]byte("authserver kid v1\x00"), secret...))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// Name is the running strategy's name.
func (s *Service) Name() string { return s.strat.Name() }

// Capabilities are the running strategy's capabilities.
func (s *Service) Capabilities() Capabilities { return CapabilitiesOf(s.strat) }

// AccessTTL is the access token lifetime.
func (s *Service) AccessTTL() time.Duration { return s.cfg.AccessTTL }

// DB is the database the Service works on.
func (s *Service) DB() *gorm.DB { return s.db }

// Now is the Service's clock.
func (s *Service) Now() time.Time { return s.now() }

func (s *Service) notSupported(op string) error {
	return &NotSupportedError{Strategy: s.strat.Name(), Op: op}
}

func (s *Service) claims(uid uint64, loginID string, now time.Time, a Assurance) *Claims {
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatUint(uid, 10),
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			// 96 random bits: unique among the tokens of any realistic
			// lifetime, and 6 bytes shorter on every request than 128.
			ID: NewSecret(12),
		},
		SID: loginID,
		AAL: a.AAL,
		AMR: a.AMR,
	}
	if supersedes(s.strat) {
		c.RID = NewSecret(12)
	}
	return c
}

// sign signs c with the active secret (the server's, or the user's key
// derived from it), naming the secret in the kid header.
func (s *Service) sign(u *models.User, c *Claims) (string, error) {
	key := s.secrets[0].key
	if s.strat.PerUserKey() {
		var err error
		if key, err = userKey(key, s.strat.Name(), u); err != nil {
			return "", err
		}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = s.secrets[0].kid
	// typ is optional (RFC 7519 §5.1) and says nothing here: every token
	// of this server is a JWT, and a shorter header is parsed faster on
	// every request.
	delete(t.Header, "typ")
	tok, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

// secretIndex finds the secret a token's kid names. A token without a kid
// (issued before kids existed) is checked against the active secret only;
// an unknown kid matches nothing, so no token makes the server try every
// key.
func (s *Service) secretIndex(kid any) (int, bool) {
	if kid == nil {
		return 0, true
	}
	k, ok := kid.(string)
	if !ok {
		return 0, false
	}
	for i, sec := range s.secrets {
		if sec.kid == k {
			return i, true
		}
	}
	return 0, false
}

// Verify checks an access token under the running strategy. The token is
// parsed once: the key function reads the (not yet trusted) subject to
// find the user's state, from the cache or the database, and hands the
// parser that user's key; a user who does not exist gets a key nobody has,
// so that an unknown user costs and answers the same as a bad signature.
//
// A cached state may be older than the token: another instance logged the
// user in, refreshed, or re-keyed them a moment ago, and the invalidation
// has not arrived yet (milliseconds with Redis, up to max_staleness
// without). When the cached state refuses a token that may be newer than
// it, the state is read again, once, before answering (see mayBeNewer).
func (s *Service) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, v, err := s.verify(ctx, raw, false)
	if err == nil || !v.cached || !s.mayBeNewer(v, err) {
		return p, err
	}
	p, _, err = s.verify(ctx, raw, true)
	return p, err
}

// verdict is what a verification learned besides its answer.
type verdict struct {
	st     *State
	claims *Claims
	// cached: st came from the cache; badSig: the signature did not
	// verify under st's key (the claims are then not authenticated).
	cached, badSig bool
}

// rereadEvery is the least time between two re-reads of one cached state
// (a per-user bound of the forged tokens' path); rereadRate bounds them
// over all users, per second.
const (
	rereadEvery = 100 * time.Millisecond
	rereadRate  = 100
)

// mayBeNewer reports whether a refusal by a cached state is worth a
// re-read, and takes the re-read from the bounds. A token may be newer
// than the state when it was issued after the state was read (iat has
// whole seconds, so a second of margin), when it names a login, a refresh
// or a version the state does not know, or when its signature failed
// under the state's key (a re-key elsewhere: a password change or reset,
// logout-others). A forged token can claim any of that, so every re-read
// is bounded: per cached state (rereadEvery) and globally (rereadRate).
// Past the bounds the refusal stands, as it would have without the
// re-read, until the invalidation arrives.
func (s *Service) mayBeNewer(v verdict, err error) bool {
	st, c := v.st, v.claims
	if st == nil || c == nil {
		return false
	}
	if !errors.Is(err, ErrTokenRevoked) && !(errors.Is(err, ErrTokenInvalid) && v.badSig) {
		return false
	}
	// A user that does not exist has no key to change: its id is never
	// given to another user, and a registration is announced like any
	// change.
	if !st.Found {
		return false
	}
	// A bad signature's claims are not authenticated: the failure alone
	// is the reason (a re-key elsewhere), whatever they say.
	newer := v.badSig
	if !newer && c.IssuedAt != nil && c.IssuedAt.Add(time.Second).After(st.ReadAt) {
		newer = true
	}
	if !newer && c.SID != "" && c.SID != st.Current {
		l, known := st.Logins[c.SID]
		newer = !known || (c.RID != "" && l.RefreshID != c.RID)
	}
	if !newer && c.Ver != nil && *c.Ver > st.TokenVersion {
		newer = true
	}
	if !newer {
		return false
	}
	now := int64(s.now().UnixNano())
	last := st.reread.Load()
	if now-last < int64(rereadEvery) || !st.reread.CompareAndSwap(last, now) {
		return false
	}
	return s.reread.Allow()
}

// verify is one verification; fresh reads the user's state from the
// database instead of the cache (and stores it).
func (s *Service) verify(ctx context.Context, raw string, fresh bool) (*Principal, verdict, error) {
	var v verdict
	if raw == "" || len(raw) > MaxTokenBytes {
		return nil, v, ErrTokenInvalid
	}
	var (
		c       Claims
		st      *State
		loadErr error
	)
	_, err := s.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		i, ok := s.secretIndex(t.Header["kid"])
		if !ok {
			return nil, ErrTokenInvalid
		}
		if !s.strat.PerUserKey() {
			return s.secrets[i].key, nil
		}
		uid, err := strconv.ParseUint(c.Subject, 10, 64)
		if err != nil || uid == 0 {
			return nil, ErrTokenInvalid
		}
		if fresh {
			st, loadErr = s.reload(ctx, uid)
		} else {
			st, v.cached, loadErr = s.state(ctx, uid)
		}
		if loadErr != nil {
			return nil, loadErr
		}
		v.st, v.claims = st, &c
		if !st.Found {
			return s.decoyKey, nil
		}
		return st.keys[i], nil
	})
	if loadErr != nil {
		return nil, v, loadErr
	}
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, v, ErrTokenExpired
	default:
		v.badSig = st != nil && errors.Is(err, jwt.ErrTokenSignatureInvalid)
		return nil, v, ErrTokenInvalid
	}
	uid, perr := strconv.ParseUint(c.Subject, 10, 64)
	if perr != nil || uid == 0 || c.SID == "" || (s.strat.PerUserKey() && (st == nil || !st.Found)) {
		return nil, v, ErrTokenInvalid
	}
	now := s.now()
	if err := s.strat.Check(st, &c, now); err != nil {
		return nil, v, err
	}
	if s.touches != nil && st != nil {
		if l, ok := st.Logins[c.SID]; ok && now.Sub(l.LastSeenAt) >= touchEvery {
			s.touches.add(uid, c.SID, now)
		}
	}
	return &Principal{UserID: uid, LoginID: c.SID, Claims: &c}, v, nil
}

// reload reads user uid's state from the database, bypassing the cache,
// and stores it: a cached state refused a token that may be newer.
func (s *Service) reload(ctx context.Context, uid uint64) (*State, error) {
	c := s.cache
	if c == nil {
		return s.loadState(ctx, uid)
	}
	t := c.Ticket()
	st, err := s.loadState(ctx, uid)
	if err != nil {
		return nil, err
	}
	// The per-user bound carries over to the state that replaces the one
	// just re-read.
	st.reread.Store(s.now().UnixNano())
	if st.Found || uid <= c.MaxUser() {
		c.Put(uid, st.Revision, st, t)
	}
	return st, nil
}

// fill is the result of one shared load of a user's state.
type fill struct {
	st     *State
	stored bool
}

// loadTimeout bounds a shared load, which outlives the request that
// started it.
const loadTimeout = 5 * time.Second

// state returns what verifying a token of user uid needs: from the cache
// when it is trusted and holds the user, else from the database, filling
// the cache. Concurrent misses of one user share one read; if that read
// could not be stored because an invalidation overtook it, each caller
// reads again on its own, so that nobody who asked after a revocation
// answered is handed the state from before it.
func (s *Service) state(ctx context.Context, uid uint64) (st *State, cached bool, err error) {
	c := s.cache
	if c == nil || !c.Trusted() {
		st, err = s.loadState(ctx, uid)
		return st, false, err
	}
	if st, ok := c.Get(uid); ok {
		return st, true, nil
	}
	beyond := uid > c.MaxUser()
	if beyond && !s.probe.Allow() {
		return nil, false, ErrBusy
	}
	ch := s.flight.DoChan(strconv.FormatUint(uid, 10), func() (any, error) {
		t := c.Ticket()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		st, err := s.loadState(lctx, uid)
		if err != nil {
			return nil, err
		}
		// A user id beyond the highest known one that names nobody is
		// not remembered: random ids would only push real users out.
		stored := false
		if st.Found || !beyond {
			stored = c.Put(uid, st.Revision, st, t)
		}
		if s.afterFill != nil {
			s.afterFill()
		}
		return fill{st: st, stored: stored}, nil
	})
	select {
	case <-ctx.Done():
		return nil, false, models.Unavailable("load user", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		f := r.Val.(fill)
		if !r.Shared {
			return f.st, false, nil
		}
		// A caller that joined the flight may have arrived after a
		// revocation answered, while the flight's read came before it:
		// the fill is handed on only while the cache still holds that
		// same state (an invalidation since has dropped it), else the
		// caller reads on its own.
		if cur, ok := c.Get(uid); f.stored && ok && cur == f.st {
			return f.st, true, nil
		}
		st, err = s.loadState(ctx, uid)
		return st, false, err
	}
}

// loadState reads user uid's state from the database: the user row, the
// keys derived from it, and the strategy's state.
func (s *Service) loadState(ctx context.Context, uid uint64) (*State, error) {
	readAt := s.now()
	var u models.User
	err := s.db.WithContext(ctx).Take(&u, "id = ?", uid).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return &State{UserID: uid, ReadAt: readAt}, nil
	case err != nil:
		return nil, models.Unavailable("load user", err)
	}
	st := &State{UserID: uid, Revision: u.Revision, Found: true, ReadAt: readAt, keys: make([][]byte, len(s.secrets))}
	for i, sec := range s.secrets {
		if st.keys[i], err = userKey(sec.key, s.strat.Name(), &u); err != nil {
			return nil, err
		}
	}
	if err := s.strat.Snapshot(ctx, s.db, &u, st, s.now()); err != nil {
		return nil, err
	}
	return st, nil
}

// User reads the user row, fresh from the database.
func (s *Service) User(ctx context.Context, uid uint64) (*models.User, error) {
	var u models.User
	err := s.db.WithContext(ctx).Take(&u, "id = ?", uid).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrTokenInvalid
	case err != nil:
		return nil, models.Unavailable("load user", err)
	}
	return &u, nil
}

// change runs fn in a transaction with user uid's row locked. When fn
// reports that it changed the user's revocation state, the user's revision
// is bumped and an outbox row written in the same transaction, and after
// the commit the change is announced: this instance's cache drops the user
// at once (so the revoking request answers only when its own instance
// rejects the token), and the others learn it through Redis and the
// outbox. A user that no longer exists fails with ifGone.
func (s *Service) change(ctx context.Context, uid uint64, ifGone error, fn func(tx *gorm.DB, u *models.User) (changed bool, err error)) error {
	var rev int64
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		rev = 0
		u, err := models.LockUser(tx, uid)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ifGone
		}
		if err != nil {
			return err
		}
		changed, err := fn(tx, u)
		if err != nil || !changed {
			return err
		}
		if err := models.Invalidate(tx, u); err != nil {
			return err
		}
		rev = u.Revision
		return nil
	})
	if err == nil && rev > 0 {
		s.announce(uid, rev)
	}
	return err
}

// announce tells this instance's cache and the other instances that user
// uid's state changed at revision rev. Call it only after the commit.
func (s *Service) announce(uid uint64, rev int64) {
	if s.cache != nil {
		s.cache.Invalidate(uid, rev)
	}
	if s.cfg.Announce != nil {
		s.cfg.Announce(uid, rev)
	}
}

// record writes an audit event inside tx.
func (s *Service) record(ctx context.Context, tx *gorm.DB, now time.Time, ev audit.Event) error {
	return audit.Record(ctx, tx, now, ev)
}

// tracksLogins reports whether a login changes the strategy's state.
func (s *Service) tracksLogins() bool {
	_, ok := s.strat.(Logouter)
	return ok
}

// Register creates an account. The unique index decides, not a read before
// the insert: of two concurrent registrations of one email exactly one
// succeeds. The new id is announced like any change, so that instances
// that remembered it as nobody forget that.
func (s *Service) Register(ctx context.Context, email, passwordHash string) (*models.User, error) {
	return s.createUser(ctx, email, passwordHash, audit.Register)
}

// createUser creates an account and records action for it, in one
// transaction.
func (s *Service) createUser(ctx context.Context, email, passwordHash, action string) (*models.User, error) {
	now := s.now().UTC()
	var u models.User
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		u = models.User{Email: email, PasswordHash: passwordHash, KeySalt: NewKeySalt(), CreatedAt: now, UpdatedAt: now, Revision: 1}
		if err := tx.Create(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrEmailTaken
			}
			return models.Unavailable("create user", err)
		}
		if err := s.record(ctx, tx, now, audit.Event{Action: action, Result: audit.Success, UserID: u.ID}); err != nil {
			return err
		}
		return models.InvalidateID(tx, u.ID, u.Revision)
	})
	if err != nil {
		return nil, err
	}
	s.announce(u.ID, u.Revision)
	return &u, nil
}

// Login starts a login for user uid, whose password the caller checked
// against passwordHash. If the password changed in the meantime the login
// fails as if the password were wrong.
func (s *Service) Login(ctx context.Context, uid uint64, passwordHash string, d DeviceInfo) (*Tokens, error) {
	if s.touches != nil {
		s.touches.flushUser(ctx, uid)
	}
	now := s.now()
	var out *Tokens
	err := s.change(ctx, uid, ErrInvalidCredentials, func(tx *gorm.DB, u *models.User) (bool, error) {
		if u.PasswordHash != passwordHash {
			return false, ErrInvalidCredentials
		}
		challenge, err := s.challengeIfEnrolled(ctx, tx, u, d, now)
		if err != nil || challenge != nil {
			out = challenge
			return false, err
		}
		t, changed, err := s.startLogin(ctx, tx, u, d, PasswordOnly(), now)
		if err != nil {
			return false, err
		}
		out = t
		return changed, s.record(ctx, tx, now, audit.Event{
			Action: audit.Login, Result: audit.Success, UserID: uid, LoginID: t.LoginID,
			Details: deviceDetails(d.Name),
		})
	})
	return out, err
}

func deviceDetails(name string) map[string]any {
	if name == "" {
		return nil
	}
	return map[string]any{"device_name": models.Truncate(name, maxDeviceName)}
}

// startLogin records a new login of the locked user u and issues its
// tokens. changed reports whether the user's revocation state changed.
func (s *Service) startLogin(ctx context.Context, tx *gorm.DB, u *models.User, d DeviceInfo, a Assurance, now time.Time) (t *Tokens, changed bool, err error) {
	loginID := NewSecret(16)
	c := s.claims(u.ID, loginID, now, a)
	evicted, err := s.strat.Begin(ctx, tx, u, c, d, now)
	if err != nil {
		return nil, false, err
	}
	for _, id := range evicted {
		if err := revokeFamilies(tx, u.ID, now, "family_id = ?", id); err != nil {
			return nil, false, err
		}
	}
	refresh := NewSecret(32)
	expires := now.Add(s.cfg.RefreshTTL)
	row := models.RefreshToken{
		TokenHash: HashSecret(refresh), UserID: u.ID, FamilyID: loginID,
		DeviceName: models.Truncate(d.Name, maxDeviceName), IssuedAt: now, ExpiresAt: expires,
		AAL: a.AAL, AMR: strings.Join(a.AMR, ","),
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, false, models.Unavailable("store refresh token", err)
	}
	t, err = s.issue(u, c, refresh, expires)
	return t, s.tracksLogins() || len(evicted) > 0, err
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
	return s.change(ctx, p.UserID, nil, func(tx *gorm.DB, u *models.User) (bool, error) {
		changed := false
		if lo, ok := s.strat.(Logouter); ok {
			if err := lo.Logout(ctx, tx, u, p.LoginID, now); err != nil {
				return false, err
			}
			changed = true
		}
		if err := revokeFamilies(tx, u.ID, now, "family_id = ?", p.LoginID); err != nil {
			return false, err
		}
		return changed, s.record(ctx, tx, now, audit.Event{Action: audit.Logout, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID})
	})
}

// LogoutAll ends every login of the caller.
func (s *Service) LogoutAll(ctx context.Context, p *Principal) error {
	if _, ok := s.strat.(AllRevoker); !ok {
		return s.notSupported("logout-all")
	}
	now := s.now()
	return s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		if err := s.revokeEverything(ctx, tx, u, now); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{Action: audit.LogoutAll, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID})
	})
}

// revokeEverything ends every login of the locked user u: the strategy's
// state where it has any, and all refresh families.
func (s *Service) revokeEverything(ctx context.Context, tx *gorm.DB, u *models.User, now time.Time) error {
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
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (_ bool, err error) {
		out = nil
		ev := audit.Event{Action: audit.LogoutOthers, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID}
		if isDM {
			if err := dm.RevokeOthers(ctx, tx, u, p.LoginID, now); err != nil {
				return false, err
			}
			if err := revokeFamilies(tx, u.ID, now, "family_id <> ?", p.LoginID); err != nil {
				return false, err
			}
			return true, s.record(ctx, tx, now, ev)
		}
		if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
			return false, err
		}
		if err := s.revokeEverything(ctx, tx, u, now); err != nil {
			return false, err
		}
		if out, _, err = s.startLogin(ctx, tx, u, d, AssuranceOf(p.Claims), now); err != nil {
			return false, err
		}
		ev.Details = map[string]any{"new_login_id": out.LoginID}
		return true, s.record(ctx, tx, now, ev)
	})
	return out, err
}

// ChangePassword sets a new password hash for the caller, whose current
// password the caller checked against oldHash, ends every login and starts
// a new one for the caller.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, oldHash, newHash string, d DeviceInfo) (*Tokens, error) {
	now := s.now()
	var out *Tokens
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (_ bool, err error) {
		if u.PasswordHash != oldHash {
			return false, ErrInvalidCredentials
		}
		if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
			return false, err
		}
		if err := s.setPassword(ctx, tx, u, newHash, now); err != nil {
			return false, err
		}
		if out, _, err = s.startLogin(ctx, tx, u, d, AssuranceOf(p.Claims), now); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{Action: audit.PasswordChanged, Result: audit.Success, UserID: u.ID, LoginID: out.LoginID})
	})
	return out, err
}

// CheckResetToken reports, without spending it, whether a reset token can
// be spent now: a confirmation with a dead token then costs no bcrypt.
// ResetPassword checks again, under the lock.
func (s *Service) CheckResetToken(ctx context.Context, token string) error {
	if token == "" || len(token) > 128 {
		return ErrInvalidResetToken
	}
	var n int64
	err := s.db.WithContext(ctx).Model(&models.ResetToken{}).
		Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", HashSecret(token), s.now().UTC()).Count(&n).Error
	if err != nil {
		return models.Unavailable("load reset token", err)
	}
	if n == 0 {
		return ErrInvalidResetToken
	}
	return nil
}

// ResetPassword spends a password-reset token and sets the new password
// hash in one transaction (the token is spent only if the password is
// set), ending every login of the account.
// It returns the account's stored email, the key of its brute-force
// throttle, which the caller clears.
func (s *Service) ResetPassword(ctx context.Context, token, newHash string) (email string, err error) {
	if token == "" || len(token) > 128 {
		return "", ErrInvalidResetToken
	}
	var row models.ResetToken
	err = s.db.WithContext(ctx).Take(&row, "token_hash = ?", HashSecret(token)).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return "", ErrInvalidResetToken
	case err != nil:
		return "", models.Unavailable("load reset token", err)
	}
	now := s.now().UTC()
	err = s.change(ctx, row.UserID, ErrInvalidResetToken, func(tx *gorm.DB, u *models.User) (bool, error) {
		email = u.Email
		// One conditional write spends the token: of two concurrent
		// confirmations only one finds it unused.
		res := tx.Model(&models.ResetToken{}).
			Where("id = ? AND used_at IS NULL AND expires_at > ?", row.ID, now).
			Update("used_at", now)
		if res.Error != nil {
			return false, models.Unavailable("use reset token", res.Error)
		}
		if res.RowsAffected != 1 {
			return false, ErrInvalidResetToken
		}
		// The user's other outstanding reset tokens die with this one.
		err := tx.Model(&models.ResetToken{}).Where("user_id = ? AND used_at IS NULL", u.ID).Update("used_at", now).Error
		if err != nil {
			return false, models.Unavailable("use reset tokens", err)
		}
		if err := s.setPassword(ctx, tx, u, newHash, now); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{Action: audit.PasswordResetCompleted, Result: audit.Success, UserID: u.ID})
	})
	if err != nil {
		return "", err
	}
	return email, nil
}

// setPassword stores a new password hash for the locked user u and ends
// every login. The new hash alone already changes the signing key; ending
// the strategy's state and the refresh families makes that hold for every
// strategy and keeps the device list honest.
func (s *Service) setPassword(ctx context.Context, tx *gorm.DB, u *models.User, newHash string, now time.Time) error {
	u.PasswordHash = newHash
	u.UpdatedAt = now
	if err := saveUser(tx, u, "password_hash", "updated_at"); err != nil {
		return err
	}
	return s.revokeEverything(ctx, tx, u, now)
}

// DeleteAccount deletes the caller's account and everything of it, if its
// password hash is still passwordHash (the caller checked the password
// against it).
func (s *Service) DeleteAccount(ctx context.Context, uid uint64, passwordHash string) error {
	now := s.now()
	return s.change(ctx, uid, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		if u.PasswordHash != passwordHash {
			return false, ErrInvalidCredentials
		}
		if err := models.DeleteUser(tx, u.ID); err != nil {
			return false, err
		}
		// The account's events go with it; this one is kept without
		// the user id.
		return true, s.record(ctx, tx, now, audit.Event{Action: audit.AccountDeleted, Result: audit.Success})
	})
}

// Devices lists the caller's devices.
func (s *Service) Devices(ctx context.Context, p *Principal) ([]Device, error) {
	dm, ok := s.strat.(DeviceManager)
	if !ok {
		return nil, s.notSupported("listing devices")
	}
	if s.touches != nil {
		s.touches.flushUser(ctx, p.UserID)
	}
	u, err := s.User(ctx, p.UserID)
	if err != nil {
		return nil, err
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
	return s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		if err := dm.RevokeDevice(ctx, tx, u, id, now); err != nil {
			return false, err
		}
		if err := revokeFamilies(tx, u.ID, now, "family_id = ?", id); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{
			Action: audit.DeviceRevoked, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID,
			Details: map[string]any{"device_id": id},
		})
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

// Ping reports whether the database answers.
func (s *Service) Ping(ctx context.Context) error { return models.Ping(ctx, s.db) }
