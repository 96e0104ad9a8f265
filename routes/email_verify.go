package routes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

var (
	errInvalidVerificationToken = &apiError{Status: http.StatusBadRequest, Code: "invalid_verification_token", Message: "the verification token is invalid, used or expired"}
	errEmailNotVerified         = &apiError{Status: http.StatusForbidden, Code: "email_not_verified", Message: "the email address of this account is not verified: follow the link in the verification mail"}
)

// verifyResendAccepted is the 202 of a verification resend, the same for
// every address.
var verifyResendAccepted = gin.H{"message": "request accepted: if an unverified account exists for this address, a verification mail is queued for it"}

// emailChangeAccepted is the 202 of an email change, whatever the new
// address is.
var emailChangeAccepted = gin.H{"message": "request accepted: a confirmation mail is queued for the new address"}

// newEmailToken stores, in tx, a single-use token of purpose for u and
// the address addr, and returns it.
func (s *server) newEmailToken(tx *gorm.DB, u *models.User, purpose, addr string, ttl time.Duration) (string, error) {
	now := s.now().UTC()
	t := strategy.NewSecret(32)
	row := models.EmailToken{TokenHash: strategy.HashSecret(t), UserID: u.ID, Purpose: purpose, Email: addr, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.Create(&row).Error; err != nil {
		return "", models.Unavailable("store email token", err)
	}
	return t, nil
}

// queueVerification makes a verification token for the new account u and
// queues its mail, in one transaction. Registration has committed: a
// failure here is logged, and the user can ask for another mail.
func (s *server) queueVerification(ctx context.Context, u *models.User) {
	if !s.mailEnabled {
		return
	}
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		token, err := s.newEmailToken(tx, u, models.EmailVerify, u.Email, s.cfg.Accounts.VerifyTTL)
		if err != nil {
			return err
		}
		return s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.VerifyEmail, To: u.Email, UserID: u.ID, Token: token})
	})
	if err != nil {
		s.log.WarnContext(ctx, "queueing the verification mail failed", "err", err)
		return
	}
	s.mail.Notify()
}

type tokenRequest struct {
	Token string `json:"token"`
}

// spendEmailToken marks the live token of purpose used, inside tx, and
// returns its row and its account, locked. A token of the other purpose,
// used, expired or unknown is errInvalidVerificationToken.
func (s *server) spendEmailToken(tx *gorm.DB, token, purpose string) (*models.EmailToken, *models.User, error) {
	if token == "" || len(token) > 128 {
		return nil, nil, errInvalidVerificationToken
	}
	now := s.now().UTC()
	var row models.EmailToken
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&row, "token_hash = ?", strategy.HashSecret(token)).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, nil, errInvalidVerificationToken
	case err != nil:
		return nil, nil, models.Unavailable("load email token", err)
	}
	if row.Purpose != purpose || row.UsedAt != nil || !row.ExpiresAt.After(now) {
		return nil, nil, errInvalidVerificationToken
	}
	u, err := models.LockUser(tx, row.UserID)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, errInvalidVerificationToken
	}
	if err != nil {
		return nil, nil, err
	}
	res := tx.Model(&models.EmailToken{}).Where("id = ? AND used_at IS NULL", row.ID).Update("used_at", now)
	if res.Error != nil {
		return nil, nil, models.Unavailable("spend email token", res.Error)
	}
	if res.RowsAffected != 1 {
		return nil, nil, errInvalidVerificationToken
	}
	return &row, u, nil
}

// verifyEmail spends a verification token: the account's address is
// verified, if it is still the address the token was sent to.
func (s *server) verifyEmail(c *gin.Context) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := s.ctx(c)
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, u, err := s.spendEmailToken(tx, req.Token, models.EmailVerify)
		if err != nil {
			return err
		}
		if u.Email != row.Email {
			return errInvalidVerificationToken
		}
		now := s.now().UTC()
		if u.EmailVerifiedAt == nil {
			if err := tx.Model(u).Update("email_verified_at", now).Error; err != nil {
				return models.Unavailable("verify email", err)
			}
		}
		return audit.Record(ctx, tx, now, audit.Event{Action: audit.EmailVerified, Result: audit.Success, UserID: u.ID})
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// verifyResend answers 202 for every address after the same work (one
// outbox row); the worker makes the token and the mail off the request
// path (prepareVerify), within accounts.verify_cooldown per account.
func (s *server) verifyResend(c *gin.Context) error {
	var req resetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := s.ctx(c)
	body := gin.H{"message": verifyResendAccepted["message"]}
	if !s.mailEnabled {
		c.JSON(http.StatusAccepted, body)
		return nil
	}
	if err := s.requestMail(ctx, mail.VerifyEmail, email); err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, body)
	return nil
}

// prepareVerify is the outbox's preparer of verification resends: a new
// token for an unverified account whose last one is older than the
// cooldown; otherwise the request is dropped.
func (s *server) prepareVerify(ctx context.Context, tx *gorm.DB, email string, _ uint64, _ []byte) (*mail.Draft, error) {
	var u models.User
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, nil
	case err != nil:
		return nil, models.Unavailable("load user", err)
	}
	if u.EmailVerifiedAt != nil {
		return nil, nil
	}
	var recent int64
	cut := s.now().UTC().Add(-s.cfg.Accounts.VerifyCooldown)
	if err := tx.Model(&models.EmailToken{}).Where("user_id = ? AND purpose = ? AND created_at > ?", u.ID, models.EmailVerify, cut).Count(&recent).Error; err != nil {
		return nil, models.Unavailable("count email tokens", err)
	}
	if recent > 0 {
		return nil, nil
	}
	token, err := s.newEmailToken(tx, &u, models.EmailVerify, u.Email, s.cfg.Accounts.VerifyTTL)
	if err != nil {
		return nil, err
	}
	return &mail.Draft{Kind: mail.VerifyEmail, To: u.Email, UserID: u.ID, Token: token}, nil
}

type emailChangeRequest struct {
	NewEmail string `json:"new_email"`
	Password string `json:"password"`
}

// changeEmail checks the caller's password and answers 202 whatever the
// new address is: it mails email_change_confirm to the new address, or
// email_taken when that address has an account, and the notice to the
// current one. Nothing changes until the new address confirms.
func (s *server) changeEmail(c *gin.Context) error {
	var req emailChangeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Password == "" {
		return invalidRequest("password is required")
	}
	newEmail, err := normalizeEmail(req.NewEmail)
	if err != nil {
		return err
	}
	u, err := s.checkPassword(c, req.Password)
	if err != nil {
		return err
	}
	ctx := s.ctx(c)
	err = models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		cur, err := models.LockUser(tx, u.ID)
		if err != nil {
			return err
		}
		var taken int64
		if err := tx.Model(&models.User{}).Where("email = ?", newEmail).Count(&taken).Error; err != nil {
			return models.Unavailable("look up email", err)
		}
		if taken > 0 {
			if err := s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.EmailTaken, To: newEmail}); err != nil {
				return err
			}
		} else {
			token, err := s.newEmailToken(tx, cur, models.EmailChange, newEmail, s.cfg.Accounts.EmailChangeTTL)
			if err != nil {
				return err
			}
			if err := s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.EmailChangeConfirm, To: newEmail, UserID: cur.ID, Token: token}); err != nil {
				return err
			}
		}
		if s.cfg.Mail.Notify {
			if err := s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.EmailChangeNotice, To: cur.Email, UserID: cur.ID, NewEmail: newEmail}); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, s.now().UTC(), audit.Event{Action: audit.EmailChangeRequested, Result: audit.Success, UserID: cur.ID})
	})
	if err != nil {
		return err
	}
	s.mail.Notify()
	c.JSON(http.StatusAccepted, gin.H{"message": emailChangeAccepted["message"]})
	return nil
}

// confirmEmailChange spends an email-change token: the account takes the
// new address (verified, as the link reached it), and, with
// accounts.email_change_revokes, every session of the account ends
// through the strategy's logout-all (the confirming request carries no
// session of its own), which writes its audit event and goes through the
// cache outbox like every revocation. 409 email_taken when someone took
// the address in the meantime.
func (s *server) confirmEmailChange(c *gin.Context) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := s.ctx(c)
	var uid uint64
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row, u, err := s.spendEmailToken(tx, req.Token, models.EmailChange)
		if err != nil {
			return err
		}
		var taken int64
		if err := tx.Model(&models.User{}).Where("email = ? AND id <> ?", row.Email, u.ID).Count(&taken).Error; err != nil {
			return models.Unavailable("look up email", err)
		}
		if taken > 0 {
			return strategy.ErrEmailTaken
		}
		now := s.now().UTC()
		// The unique index decides a race with a registration.
		if err := tx.Model(u).Updates(map[string]any{"email": row.Email, "email_verified_at": now}).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return strategy.ErrEmailTaken
			}
			return models.Unavailable("change email", err)
		}
		uid = u.ID
		return audit.Record(ctx, tx, now, audit.Event{Action: audit.EmailChanged, Result: audit.Success, UserID: u.ID})
	})
	if err != nil {
		return err
	}
	if s.cfg.Accounts.EmailChangeRevokes && s.tokens.Capabilities().LogoutAllDevices {
		if err := s.tokens.LogoutAll(ctx, &strategy.Principal{UserID: uid}); err != nil {
			return fmt.Errorf("end sessions after the email change: %w", err)
		}
	}
	c.Status(http.StatusNoContent)
	return nil
}
