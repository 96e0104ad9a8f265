package strategy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/models"
)

// Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, as every
// authenticator app expects) and recovery codes. Every change goes
// through change(), under the user's row lock, so that two requests of
// one account cannot interleave; a code is accepted at most once per
// factor (the last accepted step advances with a compare-and-set).

// Errors of the second factor; the routes package maps each to its answer.
var (
	// ErrMFAPending: an unconfirmed factor exists already.
	ErrMFAPending = errors.New("an unconfirmed factor exists")
	// ErrMFAConfirmed: the factor was confirmed already.
	ErrMFAConfirmed = errors.New("factor already confirmed")
	// ErrMFACodeInvalid: a wrong, replayed or out-of-window TOTP code.
	ErrMFACodeInvalid = errors.New("invalid mfa code")
	// ErrRecoveryCodeInvalid: a wrong or used recovery code.
	ErrRecoveryCodeInvalid = errors.New("invalid recovery code")
	// ErrMFATokenInvalid: an mfa_token that is unknown, expired, used,
	// or ended by too many wrong codes.
	ErrMFATokenInvalid = errors.New("invalid mfa token")
	// ErrInsufficientAAL: the operation needs an aal2 login.
	ErrInsufficientAAL = errors.New("insufficient aal")
)

// Fixed parameters of the second factor.
const (
	FactorTOTP = "totp"
	// totpPeriod, totpSkew: 30-second steps, one step either side.
	totpPeriod = 30
	totpSkew   = 1
	// totpSecretBytes is RFC 4226's recommended 160 bits.
	totpSecretBytes = 20
	// EnrollTTL is how long an unconfirmed factor lives.
	EnrollTTL = 10 * time.Minute
	// ChallengeTTL is the lifetime of an mfa_token.
	ChallengeTTL = 5 * time.Minute
	// MaxChallengeAttempts wrong codes end an mfa_token.
	MaxChallengeAttempts = 5
	// RecoveryCodes is how many recovery codes a set has.
	RecoveryCodes = 10
	// recoveryCodeChars base32 characters: 60 bits each.
	recoveryCodeChars = 12
	// maxCodeBytes bounds a code before it is looked at.
	maxCodeBytes = 64
)

// mfaKey is one server secret's keys of the second factor.
type mfaKey struct {
	kid string
	// seal encrypts TOTP secrets (AES-256-GCM).
	seal cipher.AEAD
	// recovery keys the hashes of recovery codes.
	recovery []byte
}

// newMFAKeys derives the keys of every server secret, the active one
// first.
func newMFAKeys(secrets []serverSecret) ([]mfaKey, error) {
	out := make([]mfaKey, 0, len(secrets))
	for _, sec := range secrets {
		k, err := purposeKey(sec.key, "mfa-totp-secret")
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("mfa key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("mfa key: %w", err)
		}
		rk, err := purposeKey(sec.key, "mfa-recovery-code")
		if err != nil {
			return nil, err
		}
		out = append(out, mfaKey{kid: sec.kid, seal: aead, recovery: rk})
	}
	return out, nil
}

// factorAAD binds a sealed secret to its factor and account: a sealed
// secret copied to another row does not open.
func factorAAD(uid uint64, id string) []byte {
	return []byte("authserver totp v1\x00" + strconv.FormatUint(uid, 10) + "\x00" + id)
}

// sealSecret encrypts a TOTP secret under the active key.
func (s *Service) sealSecret(uid uint64, id string, secret []byte) (kid string, sealed []byte) {
	k := s.mfaKeys[0]
	nonce := randomBytes(k.seal.NonceSize())
	return k.kid, k.seal.Seal(nonce, nonce, secret, factorAAD(uid, id))
}

// openSecret decrypts the TOTP secret of f.
func (s *Service) openSecret(f *models.MFAFactor) ([]byte, error) {
	for _, k := range s.mfaKeys {
		if k.kid != f.KeyID {
			continue
		}
		n := k.seal.NonceSize()
		if len(f.Sealed) < n {
			break
		}
		secret, err := k.seal.Open(nil, f.Sealed[:n], f.Sealed[n:], factorAAD(f.UserID, f.ID))
		if err != nil {
			return nil, fmt.Errorf("open totp secret of factor %s: %w", f.ID, err)
		}
		return secret, nil
	}
	return nil, fmt.Errorf("open totp secret of factor %s: no server secret with kid %q", f.ID, f.KeyID)
}

// totpStep is the time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step within the skew window around now whose code
// is code, or -1. Every step of the window is computed and compared in
// constant time, whatever matches: pquerna/otp's ValidateCustom does not
// say which step matched, and the step is what a replay is told apart by.
func matchTOTP(secret []byte, code string, now time.Time) int64 {
	if len(code) != 6 {
		return -1
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return -1
		}
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	cur := totpStep(now)
	matched := int64(-1)
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(b32, uint64(step), opts)
		if err != nil {
			return -1
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && matched < 0 {
			matched = step
		}
	}
	return matched
}

// MFAChallenge is what a login with the right password answers for an
// account with a second factor.
type MFAChallenge struct {
	Token     string
	Factors   []FactorRef
	ExpiresIn int64
}

// FactorRef names a confirmed factor.
type FactorRef struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Enrollment is a new, unconfirmed TOTP factor.
type Enrollment struct {
	ID         string
	Secret     string
	OTPAuthURI string
	ExpiresAt  time.Time
}

// Factor describes a factor in a list: never its secret.
type Factor struct {
	ID          string
	Type        string
	Confirmed   bool
	CreatedAt   time.Time
	ConfirmedAt *time.Time
	LastUsedAt  *time.Time
	ExpiresAt   *time.Time
}

// confirmedFactors lists the confirmed factors of user uid.
func confirmedFactors(tx *gorm.DB, uid uint64) ([]models.MFAFactor, error) {
	var fs []models.MFAFactor
	if err := tx.Where("user_id = ? AND confirmed_at IS NOT NULL", uid).Order("created_at, id").Find(&fs).Error; err != nil {
		return nil, models.Unavailable("load mfa factors", err)
	}
	return fs, nil
}

// challengeIfEnrolled starts the second step of a login of the locked
// user u when it has a confirmed factor; nil when it has none.
func (s *Service) challengeIfEnrolled(ctx context.Context, tx *gorm.DB, u *models.User, d DeviceInfo, now time.Time) (*Tokens, error) {
	var refs []FactorRef
	err := tx.Model(&models.MFAFactor{}).Select("id, type").
		Where("user_id = ? AND confirmed_at IS NOT NULL", u.ID).Order("created_at, id").Scan(&refs).Error
	if err != nil {
		return nil, models.Unavailable("load mfa factors", err)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	token := "mfa_" + NewSecret(32)
	row := models.MFAChallenge{
		TokenHash: HashSecret(token), UserID: u.ID, PasswordHash: u.PasswordHash,
		DeviceName: models.Truncate(d.Name, maxDeviceName), CreatedAt: now.UTC(), ExpiresAt: now.Add(ChallengeTTL).UTC(),
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, models.Unavailable("store mfa challenge", err)
	}
	if err := s.record(ctx, tx, now, audit.Event{Action: audit.MFAChallenged, Result: audit.Success, UserID: u.ID}); err != nil {
		return nil, err
	}
	return &Tokens{MFA: &MFAChallenge{Token: token, Factors: refs, ExpiresIn: int64(ChallengeTTL / time.Second)}}, nil
}

// EnrollTOTP creates an unconfirmed TOTP factor for the caller, whose
// password the caller checked against passwordHash. At most one
// unconfirmed factor exists per account: the unique index on
// pending_user_id decides (ErrMFAPending); an expired one is deleted first.
func (s *Service) EnrollTOTP(ctx context.Context, p *Principal, passwordHash, accountName string) (*Enrollment, error) {
	now := s.now().UTC()
	var out *Enrollment
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		if u.PasswordHash != passwordHash {
			return false, ErrInvalidCredentials
		}
		err := tx.Where("user_id = ? AND confirmed_at IS NULL AND expires_at <= ?", u.ID, now).Delete(&models.MFAFactor{}).Error
		if err != nil {
			return false, models.Unavailable("delete expired mfa factors", err)
		}
		secret := randomBytes(totpSecretBytes)
		key, err := totp.Generate(totp.GenerateOpts{
			Issuer: s.cfg.Issuer, AccountName: accountName, Period: totpPeriod,
			Secret: secret, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return false, fmt.Errorf("make totp key: %w", err)
		}
		id := NewSecret(12)
		kid, sealed := s.sealSecret(u.ID, id, secret)
		exp := now.Add(EnrollTTL)
		uid := u.ID
		row := models.MFAFactor{
			ID: id, UserID: u.ID, Type: FactorTOTP, PendingUserID: &uid, KeyID: kid, Sealed: sealed,
			CreatedAt: now, ExpiresAt: &exp,
		}
		if err := tx.Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return false, ErrMFAPending
			}
			return false, models.Unavailable("store mfa factor", err)
		}
		out = &Enrollment{ID: id, Secret: key.Secret(), OTPAuthURI: key.URL(), ExpiresAt: exp}
		return false, s.record(ctx, tx, now, audit.Event{
			Action: audit.MFAEnrolled, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID,
			Details: map[string]any{"factor_id": id, "type": FactorTOTP},
		})
	})
	return out, err
}

// ConfirmTOTP confirms the caller's factor id with a current code. It
// makes a new set of recovery codes, ends the account's other logins
// when revokeOthers (mfa.enroll_revokes_others), and hands the caller
// fresh aal2 tokens. The code counts as used.
func (s *Service) ConfirmTOTP(ctx context.Context, p *Principal, id, code string, d DeviceInfo) (*Tokens, []string, error) {
	if id == "" || len(id) > 32 {
		return nil, nil, ErrNotFound
	}
	if len(code) > maxCodeBytes {
		return nil, nil, ErrMFACodeInvalid
	}
	now := s.now()
	var (
		out   *Tokens
		codes []string
	)
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		out, codes = nil, nil
		var f models.MFAFactor
		err := tx.Take(&f, "id = ? AND user_id = ?", id, u.ID).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return false, ErrNotFound
		case err != nil:
			return false, models.Unavailable("load mfa factor", err)
		case f.ConfirmedAt != nil:
			return false, ErrMFAConfirmed
		case f.ExpiresAt != nil && !now.Before(*f.ExpiresAt):
			return false, ErrNotFound
		}
		secret, err := s.openSecret(&f)
		if err != nil {
			return false, err
		}
		step := matchTOTP(secret, code, now)
		if step < 0 {
			return false, ErrMFACodeInvalid
		}
		// One conditional write confirms it: of two concurrent confirms
		// only one finds it unconfirmed.
		res := tx.Model(&models.MFAFactor{}).
			Where("id = ? AND confirmed_at IS NULL AND last_step < ?", f.ID, step).
			Updates(map[string]any{"last_step": step, "confirmed_at": now.UTC(), "last_used_at": now.UTC(), "pending_user_id": nil, "expires_at": nil})
		if res.Error != nil {
			return false, models.Unavailable("confirm mfa factor", res.Error)
		}
		if res.RowsAffected != 1 {
			return false, ErrMFAConfirmed
		}
		if codes, err = s.newRecoveryCodes(tx, u.ID, now); err != nil {
			return false, err
		}
		if out, err = s.elevate(ctx, tx, u, p, d, Assurance{AAL: AAL2, AMR: []string{AMRPassword, AMROTP}}, now); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{
			Action: audit.MFAConfirmed, Result: audit.Success, UserID: u.ID, LoginID: out.LoginID,
			Details: map[string]any{"factor_id": f.ID, "others_ended": s.cfg.MFAEnrollRevokesOthers},
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return out, codes, nil
}

// elevate hands the caller of the locked user u fresh tokens at
// assurance a, ending the account's other logins first when
// mfa.enroll_revokes_others is on, as the strategy's logout-others does:
// where the strategy tracks devices the caller's login stays (a new
// generation of its tokens); where it can only end everything, every
// login ends and the caller gets a new one; under stateless the other
// logins' refresh tokens end (their access tokens live until they
// expire).
func (s *Service) elevate(ctx context.Context, tx *gorm.DB, u *models.User, p *Principal, d DeviceInfo, a Assurance, now time.Time) (*Tokens, error) {
	revoke := s.cfg.MFAEnrollRevokesOthers
	if dm, ok := s.strat.(DeviceManager); ok {
		if revoke {
			if err := dm.RevokeOthers(ctx, tx, u, p.LoginID, now); err != nil {
				return nil, err
			}
			if err := revokeFamilies(tx, u.ID, now, "family_id <> ?", p.LoginID); err != nil {
				return nil, err
			}
		}
		return s.regenerate(ctx, tx, u, p.LoginID, a, now)
	}
	var err error
	if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
		return nil, err
	}
	if revoke {
		if err := s.revokeEverything(ctx, tx, u, now); err != nil {
			return nil, err
		}
	} else if err := revokeFamilies(tx, u.ID, now, "family_id = ?", p.LoginID); err != nil {
		return nil, err
	}
	t, _, err := s.startLogin(ctx, tx, u, d, a, now)
	return t, err
}

// regenerate issues a new generation of tokens of the caller's login
// loginID at assurance a, ending its refresh tokens of before (they carry
// the old assurance). The login keeps its id and its end.
func (s *Service) regenerate(ctx context.Context, tx *gorm.DB, u *models.User, loginID string, a Assurance, now time.Time) (*Tokens, error) {
	var last models.RefreshToken
	err := tx.Where("user_id = ? AND family_id = ? AND revoked_at IS NULL", u.ID, loginID).Order("id DESC").Take(&last).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrTokenRevoked
	case err != nil:
		return nil, models.Unavailable("load refresh token", err)
	}
	if err := revokeFamilies(tx, u.ID, now, "family_id = ?", loginID); err != nil {
		return nil, err
	}
	refresh := NewSecret(32)
	row := models.RefreshToken{
		TokenHash: HashSecret(refresh), UserID: u.ID, FamilyID: loginID, DeviceName: last.DeviceName,
		IssuedAt: now, ExpiresAt: last.ExpiresAt, AAL: a.AAL, AMR: strings.Join(a.AMR, ","),
	}
	if err := tx.Create(&row).Error; err != nil {
		return nil, models.Unavailable("store refresh token", err)
	}
	c := s.claims(u.ID, loginID, now, a)
	if err := s.strat.Resume(ctx, tx, u, c, now); err != nil {
		return nil, err
	}
	if sp, ok := s.strat.(Superseder); ok && sp.SupersedesAccess() {
		if err := sp.Supersede(ctx, tx, u, loginID, c.RID, now); err != nil {
			return nil, err
		}
	}
	return s.issue(u, c, refresh, last.ExpiresAt)
}

// useTOTP accepts code for one of the confirmed factors of the locked
// user u, advancing that factor's last step with a compare-and-set: a
// code of a step at or before the last accepted one (a replay) is
// refused.
func (s *Service) useTOTP(tx *gorm.DB, u *models.User, code string, now time.Time) (bool, error) {
	if len(code) > maxCodeBytes {
		return false, nil
	}
	fs, err := confirmedFactors(tx, u.ID)
	if err != nil {
		return false, err
	}
	for i := range fs {
		f := &fs[i]
		secret, err := s.openSecret(f)
		if err != nil {
			return false, err
		}
		step := matchTOTP(secret, code, now)
		if step < 0 || step <= f.LastStep {
			continue
		}
		res := tx.Model(&models.MFAFactor{}).Where("id = ? AND last_step < ?", f.ID, step).
			Updates(map[string]any{"last_step": step, "last_used_at": now.UTC()})
		if res.Error != nil {
			return false, models.Unavailable("use mfa code", res.Error)
		}
		if res.RowsAffected == 1 {
			return true, nil
		}
	}
	return false, nil
}

// normalizeRecoveryCode drops separators and spaces and upper-cases.
func normalizeRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range code {
		switch {
		case r == '-' || r == ' ':
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// recoveryHash is the stored form of a recovery code of user uid under
// key k: HMAC-SHA256, so that a database alone does not allow an offline
// search of the codes.
func recoveryHash(k []byte, uid uint64, code string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(strconv.FormatUint(uid, 10) + "\x00" + normalizeRecoveryCode(code)))
	return m.Sum(nil)
}

// newRecoveryCodes replaces the recovery codes of user uid with a new set
// and returns it, formatted XXXX-XXXX-XXXX.
func (s *Service) newRecoveryCodes(tx *gorm.DB, uid uint64, now time.Time) ([]string, error) {
	if err := tx.Where("user_id = ?", uid).Delete(&models.MFARecoveryCode{}).Error; err != nil {
		return nil, models.Unavailable("delete recovery codes", err)
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	codes := make([]string, RecoveryCodes)
	rows := make([]models.MFARecoveryCode, RecoveryCodes)
	for i := range codes {
		raw := enc.EncodeToString(randomBytes(8))[:recoveryCodeChars]
		codes[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12]
		rows[i] = models.MFARecoveryCode{UserID: uid, CodeHash: recoveryHash(s.mfaKeys[0].recovery, uid, raw), CreatedAt: now.UTC()}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, models.Unavailable("store recovery codes", err)
	}
	return codes, nil
}

// useRecovery spends one unused recovery code of the locked user u.
func (s *Service) useRecovery(tx *gorm.DB, u *models.User, code string, now time.Time) (bool, error) {
	if len(code) > maxCodeBytes {
		return false, nil
	}
	var rows []models.MFARecoveryCode
	if err := tx.Where("user_id = ? AND used_at IS NULL", u.ID).Find(&rows).Error; err != nil {
		return false, models.Unavailable("load recovery codes", err)
	}
	hashes := make([][]byte, len(s.mfaKeys))
	for i, k := range s.mfaKeys {
		hashes[i] = recoveryHash(k.recovery, u.ID, code)
	}
	var hit uint64
	for _, r := range rows {
		for _, h := range hashes {
			if subtle.ConstantTimeCompare(r.CodeHash, h) == 1 && hit == 0 {
				hit = r.ID
			}
		}
	}
	if hit == 0 {
		return false, nil
	}
	res := tx.Model(&models.MFARecoveryCode{}).Where("id = ? AND used_at IS NULL", hit).Update("used_at", now.UTC())
	if res.Error != nil {
		return false, models.Unavailable("use recovery code", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ChallengeUser is the account of a live mfa_token (for the brute-force
// throttle, which is keyed by email), or ErrMFATokenInvalid.
func (s *Service) ChallengeUser(ctx context.Context, token string) (*models.User, error) {
	ch, err := s.challenge(ctx, s.db, token)
	if err != nil {
		return nil, err
	}
	u, err := s.User(ctx, ch.UserID)
	if errors.Is(err, ErrTokenInvalid) {
		return nil, ErrMFATokenInvalid
	}
	return u, err
}

// challenge loads the live challenge of token.
func (s *Service) challenge(ctx context.Context, db *gorm.DB, token string) (*models.MFAChallenge, error) {
	if !strings.HasPrefix(token, "mfa_") || len(token) > 128 {
		return nil, ErrMFATokenInvalid
	}
	var ch models.MFAChallenge
	err := db.WithContext(ctx).Take(&ch, "token_hash = ?", HashSecret(token)).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrMFATokenInvalid
	case err != nil:
		return nil, models.Unavailable("load mfa challenge", err)
	}
	if ch.UsedAt != nil || !s.now().Before(ch.ExpiresAt) || ch.Attempts >= MaxChallengeAttempts {
		return nil, ErrMFATokenInvalid
	}
	return &ch, nil
}

// VerifyMFA answers the challenge of token with a TOTP code or a
// recovery code (exactly one is set) and, if it is right, finishes the
// login: aal2 tokens with amr ["pwd","otp"] or ["pwd","recovery"]. A wrong
// code counts against the challenge (MaxChallengeAttempts end it), and
// that count is committed although the answer is an error.
func (s *Service) VerifyMFA(ctx context.Context, token, code, recovery string, d DeviceInfo) (*Tokens, error) {
	ch, err := s.challenge(ctx, s.db, token)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var (
		out  *Tokens
		fail error
	)
	err = s.change(ctx, ch.UserID, ErrMFATokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		out, fail = nil, nil
		var cur models.MFAChallenge
		if err := tx.Take(&cur, "id = ?", ch.ID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return false, ErrMFATokenInvalid
			}
			return false, models.Unavailable("load mfa challenge", err)
		}
		if cur.UsedAt != nil || !now.Before(cur.ExpiresAt) || cur.Attempts >= MaxChallengeAttempts || cur.PasswordHash != u.PasswordHash {
			return false, ErrMFATokenInvalid
		}
		method, ok, err := AMROTP, false, error(nil)
		if code != "" {
			ok, err = s.useTOTP(tx, u, code, now)
		} else {
			method = AMRRecovery
			ok, err = s.useRecovery(tx, u, recovery, now)
		}
		if err != nil {
			return false, err
		}
		if !ok {
			res := tx.Model(&models.MFAChallenge{}).Where("id = ?", cur.ID).Update("attempts", gorm.Expr("attempts + 1"))
			if res.Error != nil {
				return false, models.Unavailable("count mfa attempt", res.Error)
			}
			fail = ErrMFACodeInvalid
			if method == AMRRecovery {
				fail = ErrRecoveryCodeInvalid
			}
			return false, s.record(ctx, tx, now, audit.Event{
				Action: audit.MFAFailed, Result: audit.Failure, UserID: u.ID,
				Details: map[string]any{"method": method, "attempts": cur.Attempts + 1},
			})
		}
		res := tx.Model(&models.MFAChallenge{}).Where("id = ? AND used_at IS NULL", cur.ID).Update("used_at", now.UTC())
		if res.Error != nil {
			return false, models.Unavailable("use mfa challenge", res.Error)
		}
		if res.RowsAffected != 1 {
			return false, ErrMFATokenInvalid
		}
		d.Name = cur.DeviceName
		t, changed, err := s.startLogin(ctx, tx, u, d, Assurance{AAL: AAL2, AMR: []string{AMRPassword, method}}, now)
		if err != nil {
			return false, err
		}
		out = t
		action := audit.Login
		if method == AMRRecovery {
			if err := s.record(ctx, tx, now, audit.Event{Action: audit.MFARecoveryUsed, Result: audit.Success, UserID: u.ID, LoginID: t.LoginID}); err != nil {
				return false, err
			}
		}
		return changed, s.record(ctx, tx, now, audit.Event{
			Action: action, Result: audit.Success, UserID: u.ID, LoginID: t.LoginID,
			Details: map[string]any{"amr": strings.Join([]string{AMRPassword, method}, ",")},
		})
	})
	if err != nil {
		return nil, err
	}
	if fail != nil {
		return nil, fail
	}
	return out, nil
}

// Factors lists the factors of user uid, without secrets, and how many
// unused recovery codes it has.
func (s *Service) Factors(ctx context.Context, uid uint64) ([]Factor, int64, error) {
	var rows []models.MFAFactor
	db := s.db.WithContext(ctx)
	if err := db.Where("user_id = ?", uid).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, 0, models.Unavailable("load mfa factors", err)
	}
	now := s.now()
	out := make([]Factor, 0, len(rows))
	for _, f := range rows {
		if f.ConfirmedAt == nil && f.ExpiresAt != nil && !now.Before(*f.ExpiresAt) {
			continue
		}
		out = append(out, Factor{
			ID: f.ID, Type: f.Type, Confirmed: f.ConfirmedAt != nil, CreatedAt: f.CreatedAt,
			ConfirmedAt: f.ConfirmedAt, LastUsedAt: f.LastUsedAt, ExpiresAt: f.ExpiresAt,
		})
	}
	var n int64
	if err := db.Model(&models.MFARecoveryCode{}).Where("user_id = ? AND used_at IS NULL", uid).Count(&n).Error; err != nil {
		return nil, 0, models.Unavailable("count recovery codes", err)
	}
	return out, n, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes. The
// caller checked that its login is aal2.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal) ([]string, error) {
	now := s.now()
	var codes []string
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (bool, error) {
		fs, err := confirmedFactors(tx, u.ID)
		if err != nil {
			return false, err
		}
		if len(fs) == 0 {
			return false, ErrNotFound
		}
		if codes, err = s.newRecoveryCodes(tx, u.ID, now); err != nil {
			return false, err
		}
		return false, s.record(ctx, tx, now, audit.Event{Action: audit.MFARecoveryRegenerated, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID})
	})
	return codes, err
}

// RemoveFactor deletes the caller's factor id, proven by a current code
// (code) or the password (the caller checked it against passwordHash;
// exactly one is set), and ends the account's other logins as
// enrollment does. The caller checked that its login is aal2. Where the
// strategy can only end every login, the caller gets fresh tokens (at
// its assurance); else nil.
func (s *Service) RemoveFactor(ctx context.Context, p *Principal, id, code, passwordHash string, d DeviceInfo) (*Tokens, error) {
	if id == "" || len(id) > 32 {
		return nil, ErrNotFound
	}
	now := s.now()
	var out *Tokens
	err := s.change(ctx, p.UserID, ErrTokenInvalid, func(tx *gorm.DB, u *models.User) (_ bool, err error) {
		out = nil
		var f models.MFAFactor
		err = tx.Take(&f, "id = ? AND user_id = ?", id, u.ID).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return false, ErrNotFound
		case err != nil:
			return false, models.Unavailable("load mfa factor", err)
		}
		if code != "" {
			ok, err := s.useTOTP(tx, u, code, now)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, ErrMFACodeInvalid
			}
		} else if u.PasswordHash != passwordHash {
			return false, ErrInvalidCredentials
		}
		if err := tx.Delete(&models.MFAFactor{}, "id = ?", f.ID).Error; err != nil {
			return false, models.Unavailable("delete mfa factor", err)
		}
		left, err := confirmedFactors(tx, u.ID)
		if err != nil {
			return false, err
		}
		if len(left) == 0 {
			if err := tx.Where("user_id = ?", u.ID).Delete(&models.MFARecoveryCode{}).Error; err != nil {
				return false, models.Unavailable("delete recovery codes", err)
			}
		}
		if s.cfg.MFAEnrollRevokesOthers {
			if out, err = s.endOthers(ctx, tx, u, p, d, now); err != nil {
				return false, err
			}
		}
		return true, s.record(ctx, tx, now, audit.Event{
			Action: audit.MFARemoved, Result: audit.Success, UserID: u.ID, LoginID: p.LoginID,
			Details: map[string]any{"factor_id": f.ID, "others_ended": s.cfg.MFAEnrollRevokesOthers},
		})
	})
	return out, err
}

// endOthers ends every login of the locked user u but the caller's, as
// LogoutOthers does; where the strategy can only end everything it
// starts a new login for the caller, at the caller's assurance, and
// returns its tokens. Under stateless the other logins' refresh tokens end.
func (s *Service) endOthers(ctx context.Context, tx *gorm.DB, u *models.User, p *Principal, d DeviceInfo, now time.Time) (*Tokens, error) {
	if dm, ok := s.strat.(DeviceManager); ok {
		if err := dm.RevokeOthers(ctx, tx, u, p.LoginID, now); err != nil {
			return nil, err
		}
		return nil, revokeFamilies(tx, u.ID, now, "family_id <> ?", p.LoginID)
	}
	if _, ok := s.strat.(AllRevoker); !ok {
		return nil, revokeFamilies(tx, u.ID, now, "family_id <> ?", p.LoginID)
	}
	var err error
	if d.Name, err = s.deviceName(tx, p, d.Name); err != nil {
		return nil, err
	}
	if err := s.revokeEverything(ctx, tx, u, now); err != nil {
		return nil, err
	}
	t, _, err := s.startLogin(ctx, tx, u, d, AssuranceOf(p.Claims), now)
	return t, err
}

// AdminMFAReset removes every factor and recovery code of user uid and
// ends every login (the admin CLI's user mfa-reset).
func (s *Service) AdminMFAReset(ctx context.Context, uid uint64) (removed int64, err error) {
	now := s.now()
	err = s.change(ctx, uid, ErrNotFound, func(tx *gorm.DB, u *models.User) (bool, error) {
		res := tx.Where("user_id = ?", u.ID).Delete(&models.MFAFactor{})
		if res.Error != nil {
			return false, models.Unavailable("delete mfa factors", res.Error)
		}
		removed = res.RowsAffected
		for _, m := range []any{&models.MFARecoveryCode{}, &models.MFAChallenge{}} {
			if err := tx.Where("user_id = ?", u.ID).Delete(m).Error; err != nil {
				return false, models.Unavailable("delete mfa data", err)
			}
		}
		if err := s.revokeEverything(ctx, tx, u, now); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, now, audit.Event{
			Action: audit.AdminMFAReset, Result: audit.Success, UserID: u.ID, Details: map[string]any{"factors_removed": removed},
		})
	})
	return removed, err
}
