package routes

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// maxPasswordBytes is bcrypt's limit: it ignores every byte after the 72nd,
// so a longer password is refused rather than silently shortened.
const maxPasswordBytes = 72

func normalizeEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if email == "" {
		return "", invalidRequest("email is required")
	}
	if len(email) > 254 {
		return "", invalidRequest("email must be at most 254 characters")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndex(email, "@"):], ".") {
		return "", invalidRequest("email is not a valid address")
	}
	return email, nil
}

func (s *server) checkNewPassword(pw, field string) error {
	if len(pw) > maxPasswordBytes {
		return invalidRequest(fmt.Sprintf("%s must be at most %d bytes", field, maxPasswordBytes))
	}
	if n := s.cfg.Password.MinLength; len([]rune(pw)) < n {
		return invalidRequest(fmt.Sprintf("%s must be at least %d characters", field, n))
	}
	return nil
}

func (s *server) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.Password.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

func userJSON(u *models.User) gin.H {
	return gin.H{"id": strconv.FormatUint(u.ID, 10), "email": u.Email, "created_at": u.CreatedAt.UTC()}
}

// currentUser is the caller's row, read fresh: verification may have
// answered from the cache, and a deleted account shows up here as 401
// under every strategy.
func (s *server) currentUser(c *gin.Context) (*models.User, error) {
	return s.tokens.User(c.Request.Context(), principal(c).UserID)
}

// checkPassword compares pw with the caller's password.
func (s *server) checkPassword(c *gin.Context, pw string) (*models.User, error) {
	if pw == "" || len(pw) > maxPasswordBytes {
		return nil, strategy.ErrInvalidCredentials
	}
	u, err := s.currentUser(c)
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) != nil {
		return nil, strategy.ErrInvalidCredentials
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
	hash, err := s.hashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	t, err := s.tokens.ChangePassword(s.ctx(c), principal(c), u.PasswordHash, hash, device(c, ""))
	if err != nil {
		return err
	}
	s.writeTokens(c, http.StatusOK, t)
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

// resetRequest answers 202 whether or not the account exists.
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
	body := gin.H{"message": "if an account with this email exists, a reset token has been sent"}
	var u models.User
	err = s.db.WithContext(ctx).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		c.JSON(http.StatusAccepted, body)
		return nil
	case err != nil:
		return models.Unavailable("load user", err)
	}
	token := strategy.NewSecret(32)
	now := s.now().UTC()
	row := models.ResetToken{TokenHash: strategy.HashSecret(token), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Reset.TTL)}
	err = models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return models.Unavailable("store reset token", err)
		}
		return audit.Record(ctx, tx, now, audit.Event{Action: audit.PasswordResetRequested, Result: audit.Success, UserID: u.ID})
	})
	if err != nil {
		return err
	}
	if err := s.mailer.SendPasswordReset(ctx, u.Email, token); err != nil {
		return fmt.Errorf("send reset token: %w", err)
	}
	if s.cfg.Reset.ExposeToken {
		body["reset_token"] = token
	}
	c.JSON(http.StatusAccepted, body)
	return nil
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
	hash, err := s.hashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	if err := s.tokens.ResetPassword(s.ctx(c), req.Token, hash); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
