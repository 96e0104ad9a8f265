package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
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
	u, err := s.tokens.Register(s.ctx(c), email, hash)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"user": userJSON(u)})
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
	ctx := s.ctx(c)
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return strategy.ErrInvalidCredentials
	}
	var u models.User
	err = s.db.WithContext(ctx).Take(&u, "email = ?", email).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(req.Password))
		return s.loginFailed(c, 0)
	case err != nil:
		return models.Unavailable("load user", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(req.Password)) != nil {
		return s.loginFailed(c, u.ID)
	}
	t, err := s.tokens.Login(ctx, u.ID, u.PasswordHash, device(c, req.DeviceName))
	if err != nil {
		return err
	}
	s.writeTokens(c, http.StatusOK, t)
	return nil
}

// loginFailed records a failed login (uid 0: unknown email) and returns the
// answer. The event changes nothing, so a failure to record it is logged,
// not answered.
func (s *server) loginFailed(c *gin.Context, uid uint64) error {
	ctx := s.ctx(c)
	ev := audit.Event{Action: audit.Login, Result: audit.Failure, UserID: uid, Details: map[string]any{"reason": "invalid_credentials"}}
	if err := audit.Record(ctx, s.db, s.now(), ev); err != nil {
		s.log.WarnContext(ctx, "recording a failed login failed", "err", err)
	}
	return strategy.ErrInvalidCredentials
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
	t, err := s.tokens.Refresh(s.ctx(c), raw)
	if err != nil {
		if api := toAPI(err); api.Status == http.StatusUnauthorized {
			s.clearRefreshCookie(c)
		}
		return err
	}
	s.writeTokens(c, http.StatusOK, t)
	return nil
}

// verify answers in the shape of an RFC 7662 introspection response, with
// the user id in X-Auth-User-Id for proxies doing forward auth. It is the
// hottest path of the server, so it authenticates by itself (nothing is
// stored in the gin context) and the answer is written by hand, its
// constant part once.
func (s *server) verify(c *gin.Context) {
	p, ok := s.verifyBearer(c)
	if !ok {
		return
	}
	cl := p.Claims
	buf := make([]byte, 0, 320)
	buf = append(buf, `{"active":true,"sub":"`...)
	buf = strconv.AppendUint(buf, p.UserID, 10)
	buf = append(buf, `","exp":`...)
	buf = strconv.AppendInt(buf, cl.ExpiresAt.Unix(), 10)
	buf = append(buf, `,"iat":`...)
	buf = strconv.AppendInt(buf, cl.IssuedAt.Unix(), 10)
	buf = append(buf, `,"jti":`...)
	buf = appendJSONString(buf, cl.ID)
	buf = append(buf, `,"sid":`...)
	buf = appendJSONString(buf, p.LoginID)
	buf = append(buf, s.verifyTail()...)
	h := c.Writer.Header()
	h["X-Auth-User-Id"] = []string{strconv.FormatUint(p.UserID, 10)}
	c.Data(http.StatusOK, "application/json; charset=utf-8", buf)
}

// verifyTail is the constant end of verify's answer.
func (s *server) verifyTail() []byte {
	s.tailOnce.Do(func() {
		iss, _ := json.Marshal(s.cfg.JWT.Issuer)
		aud, _ := json.Marshal([]string{s.cfg.JWT.Audience})
		name, _ := json.Marshal(s.tokens.Name())
		s.tail = []byte(`,"iss":` + string(iss) + `,"aud":` + string(aud) + `,"token_type":"Bearer","strategy":` + string(name) + `}`)
	})
	return s.tail
}

// appendJSONString appends s as a JSON string. Ids here are base64url, so
// the fast path copies them; anything else goes through encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			q, _ := json.Marshal(s)
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

func (s *server) logout(c *gin.Context) error {
	if err := s.tokens.Logout(s.ctx(c), principal(c)); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) logoutAll(c *gin.Context) error {
	if err := s.tokens.LogoutAll(s.ctx(c), principal(c)); err != nil {
		return err
	}
	s.clearRefreshCookie(c)
	c.Status(http.StatusNoContent)
	return nil
}

// logoutOthers answers 204 where the strategy can keep the caller's login,
// and 200 with fresh tokens where it had to end every login.
func (s *server) logoutOthers(c *gin.Context) error {
	t, err := s.tokens.LogoutOthers(s.ctx(c), principal(c), device(c, ""))
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
