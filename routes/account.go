package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/strategy"
)

// normalizeEmail is models.NormalizeEmail with its error as a 400.
func normalizeEmail(raw string) (string, error) {
	email, err := models.NormalizeEmail(raw)
	if err != nil {
		return "", invalidRequest(err.Error())
	}
	return email, nil
}

func (s *server) checkNewPassword(pw, field string) error {
	if err := passhash.CheckNew(pw, s.cfg.Password.MinLength); err != nil {
		return invalidRequest(field + " " + err.Error())
	}
	return nil
}

// throttleKey is the brute-force key of what a login gave as an email
// when it is not a valid address: trimmed, lower-cased and bounded, like
// a normalized one.
func throttleKey(raw string) string {
	return models.Truncate(strings.ToLower(strings.TrimSpace(raw)), 254)
}

func userJSON(u *models.User) gin.H {
	return gin.H{"id": strconv.FormatUint(u.ID, 10), "email": u.Email, "created_at": u.CreatedAt.UTC(), "email_verified": u.EmailVerifiedAt != nil}
}

// currentUser is the caller's row, read fresh: verification may have
// answered from the cache, and a deleted account shows up here as 401
// under every strategy.
func (s *server) currentUser(c *gin.Context) (*models.User, error) {
	return s.tokens.User(c.Request.Context(), principal(c).UserID)
}

// checkPassword compares pw with the caller's password, under the
// brute-force throttle of the caller's email: these checks count like
// logins.
func (s *server) checkPassword(c *gin.Context, pw string) (*models.User, error) {
	if pw == "" || len(pw) > passhash.MaxBytes {
		return nil, strategy.ErrInvalidCredentials
	}
	u, err := s.currentUser(c)
	if err != nil {
		return nil, err
	}
	if err := s.checkAccountPassword(s.ctx(c), u.Email, u, pw); err != nil {
		return nil, err
	}
	return u, nil
}

func (s *server) me(c *gin.Context) error {
	u, err := s.currentUser(c)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"user": userJSON(u)})
	return nil
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *server) changePassword(c *gin.Context) error {
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	var req changePasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.CurrentPassword == "" {
		return invalidRequest("current_password is required")
	}
	if err := s.checkNewPassword(req.NewPassword, "new_password"); err != nil {
		return err
	}
	u, err := s.checkPassword(c, req.CurrentPassword)
	if err != nil {
		return err
	}
	hash, err := s.hasher.Hash(c.Request.Context(), req.NewPassword)
	if err != nil {
		return err
	}
	t, err := s.tokens.ChangePassword(s.ctx(c), principal(c), u.PasswordHash, hash, s.device(c, ""))
	if err != nil {
		return err
	}
	s.notify(s.ctx(c), mail.PasswordChanged, u)
	s.writeTokens(c, http.StatusOK, t, mode)
	return nil
}

type deleteMeRequest struct {
	Password string `json:"password"`
}

func (s *server) deleteMe(c *gin.Context) error {
	var req deleteMeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Password == "" {
		return invalidRequest("password is required")
	}
	u, err := s.checkPassword(c, req.Password)
	if err != nil {
		return err
	}
	if err := s.tokens.DeleteAccount(s.ctx(c), u.ID, u.PasswordHash); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	c.Status(http.StatusNoContent)
	return nil
}

type resetRequest struct {
	Email string `json:"email"`
}

// resetAccepted is the 202 of a reset request, the same for every
// address: the request is queued, and a mail goes out only if the
// address has an account (and the cooldown allows).
var resetAccepted = gin.H{"message": "request accepted: if an account exists for this address, a password reset mail is queued for it"}

// resetRequest answers 202 whether or not the account exists, after the
// same work either way: one row in the mail outbox, committed before the
// answer. The token and the mail are made off the request path by the
// outbox's worker (prepareReset), so that known and unknown addresses
// cost the request the same; being durable, the outbox never refuses a
// burst while the database is up. Over reset_per_account the answer is
// the same 202, and nothing is made or sent.
func (s *server) resetRequest(c *gin.Context) error {
	var req resetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := s.ctx(c)
	body := gin.H{"message": resetAccepted["message"]}
	d, err := s.limits.Allow(ctx, "reset_per_account", email)
	if err != nil {
		return err
	}
	if !d.Allowed {
		c.JSON(http.StatusAccepted, body)
		return nil
	}
	if s.cfg.Reset.ExposeToken {
		// Demos and tests: the answer carries the token, so it is made
		// now (which says whether the account exists: never in
		// production).
		var token string
		err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
			var u *models.User
			var err error
			if token, u, err = s.makeReset(ctx, tx, email); err != nil || token == "" {
				return err
			}
			return s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.PasswordReset, To: u.Email, UserID: u.ID, Token: token})
		})
		if err != nil {
			return err
		}
		s.mail.Notify()
		if token != "" {
			body["reset_token"] = token
		}
		c.JSON(http.StatusAccepted, body)
		return nil
	}
	if err := s.requestMail(ctx, mail.PasswordReset, email); err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, body)
	return nil
}

// requestMail queues a request for a mail of kind k to whoever holds the
// address email, for the outbox to prepare off the request path (after
// resetJobDelay): every address costs the request the same one insert,
// whether it has an account or not.
func (s *server) requestMail(ctx context.Context, k mail.Kind, email string) error {
	meta, err := json.Marshal(audit.MetaFrom(ctx))
	if err != nil {
		return err
	}
	if err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		return s.mail.Request(ctx, tx, k, email, meta, resetJobDelay)
	}); err != nil {
		return err
	}
	s.mail.Notify()
	return nil
}

// maxLiveResets is how many unused, unexpired reset tokens an account may
// have at once.
const maxLiveResets = 3

// resetJobDelay is how long a queued reset request waits before a worker
// makes its token: far longer than the rest of its request takes, so that
// the token row, the audit event and the mail of an existing account are
// not made while the answer is still being written, slowing it down where
// the answer for an unknown address would not be. Without it the 202 for
// an existing account was about 70µs slower on two busy cores
// (bench/reset-timing.sh); with it the difference is within noise.
const resetJobDelay = 10 * time.Millisecond

// prepareReset is the outbox's preparer of password_reset requests: in
// the transaction that stores the prepared mail, it makes the token of
// the account of email, or drops the request (no account, cooldown). The
// mail goes to the account's stored address.
func (s *server) prepareReset(ctx context.Context, tx *gorm.DB, email string, _ uint64, req []byte) (*mail.Draft, error) {
	var meta audit.Meta
	if err := json.Unmarshal(req, &meta); err != nil {
		return nil, mail.Permanent(fmt.Errorf("reset request: %w", err))
	}
	ctx = audit.WithMeta(ctx, meta)
	token, u, err := s.makeReset(ctx, tx, email)
	if err != nil || token == "" {
		return nil, err
	}
	return &mail.Draft{Kind: mail.PasswordReset, To: u.Email, UserID: u.ID, Token: token,
		Context: func(c context.Context) context.Context { return audit.WithMeta(c, meta) }}, nil
}

// makeReset stores, in tx, a new reset token for the account of email and
// returns it with the account, or "" when there is no such account, the
// account got one less than reset.cooldown ago, or it has maxLiveResets
// live ones. The account's row lock makes the cooldown hold across
// workers and instances.
//
// The mail goes to the account's stored address (u.Email), never the one
// the requester typed: had a lookup ever matched a look-alike spelling (a
// database collation that ignores accents or case), mailing the typed
// address would hand the token to whoever owns the look-alike mailbox (the
// GitHub 2019 takeover).
func (s *server) makeReset(ctx context.Context, tx *gorm.DB, email string) (string, *models.User, error) {
	now := s.now().UTC()
	var u models.User
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return "", nil, nil
	case err != nil:
		return "", nil, models.Unavailable("load user", err)
	}
	var recent, live int64
	if err := tx.Model(&models.ResetToken{}).Where("user_id = ? AND created_at > ?", u.ID, now.Add(-s.cfg.Reset.Cooldown)).Count(&recent).Error; err != nil {
		return "", nil, models.Unavailable("count reset tokens", err)
	}
	if err := tx.Model(&models.ResetToken{}).Where("user_id = ? AND used_at IS NULL AND expires_at > ?", u.ID, now).Count(&live).Error; err != nil {
		return "", nil, models.Unavailable("count reset tokens", err)
	}
	if recent > 0 || live >= maxLiveResets {
		return "", nil, nil
	}
	t := strategy.NewSecret(32)
	row := models.ResetToken{TokenHash: strategy.HashSecret(t), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Reset.TTL)}
	if err := tx.Create(&row).Error; err != nil {
		return "", nil, models.Unavailable("store reset token", err)
	}
	if err := audit.Record(ctx, tx, now, audit.Event{Action: audit.PasswordResetRequested, Result: audit.Success, UserID: u.ID}); err != nil {
		return "", nil, err
	}
	return t, &u, nil
}

type resetConfirmRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

// resetConfirm consumes the reset token and sets the password in one
// transaction: the token is spent only if the password is set.
func (s *server) resetConfirm(c *gin.Context) error {
	var req resetConfirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Token == "" || len(req.Token) > 128 {
		return strategy.ErrInvalidResetToken
	}
	if err := s.checkNewPassword(req.NewPassword, "new_password"); err != nil {
		return err
	}
	// A token that cannot be spent costs no bcrypt.
	if err := s.tokens.CheckResetToken(c.Request.Context(), req.Token); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(c.Request.Context(), req.NewPassword)
	if err != nil {
		return err
	}
	ctx := s.ctx(c)
	email, err := s.tokens.ResetPassword(ctx, req.Token, hash)
	if err != nil {
		return err
	}
	// Whoever set the password proved the mailbox: the failures counted
	// against the account (an attacker's guesses, or the owner's own) no
	// longer lock its owner out. The lock is lifted after the commit; if
	// that fails the password is set all the same, and the lock runs out
	// on its own.
	if err := s.throttle.Unlock(ctx, email); err != nil {
		s.log.WarnContext(ctx, "a completed password reset could not lift the brute-force lock", "err", err)
	}
	if u, err := s.tokens.UserByEmail(ctx, email); err == nil {
		s.notify(ctx, mail.PasswordChanged, u)
	}
	c.Status(http.StatusNoContent)
	return nil
}

// notify queues a security notice of kind k to u's stored address, when
// mail.notify is on. It runs after the change committed (the change is
// the strategy's own transaction): a crash in between loses the notice,
// never the change; a failure to queue is logged, not answered, as the
// change is done.
func (s *server) notify(ctx context.Context, k mail.Kind, u *models.User) {
	if !s.cfg.Mail.Notify {
		return
	}
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		return s.mail.Queue(ctx, tx, mail.Draft{Kind: k, To: u.Email, UserID: u.ID})
	})
	if err != nil {
		s.log.WarnContext(ctx, "queueing a security notice failed", "kind", string(k), "err", err)
		return
	}
	s.mail.Notify()
}
