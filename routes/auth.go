package routes

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *server) register(c *gin.Context) error {
	var req registerRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if err := s.checkNewPassword(req.Password, "password"); err != nil {
		return err
	}
	hash, err := s.hashPassword(req.Password)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	u := models.User{Email: email, PasswordHash: hash, KeySalt: strategy.NewKeySalt(), CreatedAt: now, UpdatedAt: now}
	// The unique index decides, not a read before the insert: of two
	// concurrent registrations exactly one succeeds.
	if err := s.db.WithContext(c.Request.Context()).Create(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return errEmailTaken
		}
		return models.Unavailable("create user", err)
	}
	c.JSON(http.StatusCreated, gin.H{"user": userJSON(&u)})
	return nil
}

type loginRequest struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name"`
}

// login answers every failure with the same 401 after the same work: an
// unknown email is compared against a dummy hash of the configured cost.
func (s *server) login(c *gin.Context) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Email == "" || req.Password == "" {
		return invalidRequest("email and password are required")
	}
	if len(req.Password) > maxPasswordBytes {
		return invalidRequest("password must be at most 72 bytes")
	}
	if len(req.DeviceName) > 100 {
		return invalidRequest("device_name must be at most 100 bytes")
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return strategy.ErrInvalidCredentials
	}
	var u models.User
	err = s.db.WithContext(c.Request.Context()).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(req.Password))
		return strategy.ErrInvalidCredentials
	case err != nil:
		return models.Unavailable("load user", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(req.Password)) != nil {
		return strategy.ErrInvalidCredentials
	}
	t, err := s.tokens.Login(c.Request.Context(), u.ID, u.PasswordHash, device(c, req.DeviceName))
	if err != nil {
		return err
	}
	s.writeTokens(c, http.StatusOK, t)
	return nil
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh takes the refresh token from the JSON body or, failing that,
// from the cookie (with the CSRF check).
func (s *server) refresh(c *gin.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var raw string
	if len(bytes.TrimSpace(body)) > 0 {
		var req refreshRequest
		if err := decodeBytes(body, &req); err != nil {
			return err
		}
		raw = req.RefreshToken
	}
	if raw == "" {
		cookie, err := c.Cookie(refreshCookie)
		if err != nil || cookie == "" {
			return invalidRequest("a refresh_token is required, in the JSON body or the refresh_token cookie")
		}
		if !s.csrfOK(c) {
			return errCSRF
		}
		raw = cookie
	}
	t, err := s.tokens.Refresh(c.Request.Context(), raw)
	if err != nil {
		if api := toAPI(err); api.Status == http.StatusUnauthorized {
			s.clearRefreshCookie(c)
		}
		return err
	}
	s.writeTokens(c, http.StatusOK, t)
	return nil
}

// verify answers in the shape of an RFC 7662 introspection response.
func (s *server) verify(c *gin.Context) error {
	p := principal(c)
	cl := p.Claims
	sub := strconv.FormatUint(p.UserID, 10)
	c.Header("X-Auth-User-Id", sub)
	c.JSON(http.StatusOK, gin.H{
		"active": true, "sub": sub, "exp": cl.ExpiresAt.Unix(), "iat": cl.IssuedAt.Unix(),
		"iss": cl.Issuer, "aud": cl.Audience, "jti": cl.ID, "sid": p.LoginID,
		"token_type": "Bearer", "strategy": s.tokens.Name(),
	})
	return nil
}

func (s *server) logout(c *gin.Context) error {
	if err := s.tokens.Logout(c.Request.Context(), principal(c)); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) logoutAll(c *gin.Context) error {
	if err := s.tokens.LogoutAll(c.Request.Context(), principal(c)); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	c.Status(http.StatusNoContent)
	return nil
}

// logoutOthers answers 204 where the strategy can keep the caller's login,
// and 200 with fresh tokens where it had to end every login.
func (s *server) logoutOthers(c *gin.Context) error {
	t, err := s.tokens.LogoutOthers(c.Request.Context(), principal(c), device(c, ""))
	if err != nil {
		return err
	}
	if t == nil {
		c.Status(http.StatusNoContent)
		return nil
	}
	s.writeTokens(c, http.StatusOK, t)
	return nil
}
