package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/passhash"
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
	hash, err := s.hasher.Hash(c.Request.Context(), req.Password)
	if err != nil {
		return err
	}
	u, err := s.tokens.Register(s.ctx(c), email, hash)
	if s.cfg.Accounts.RequireVerifiedEmail {
		return s.registerPending(c, email, u, err)
	}
	if err != nil {
		return err
	}
	s.queueVerification(s.ctx(c), u)
	c.JSON(http.StatusCreated, gin.H{"user": userJSON(u)})
	return nil
}

type loginRequest struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name"`
}

// login answers every failure with the same 401 after the same work: an
// unknown (or malformed) email is compared against a dummy hash of the
// configured cost, and counts against the brute-force throttle like a
// known one, so neither the answer nor the lock reveals an account.
func (s *server) login(c *gin.Context) error {
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Email == "" || req.Password == "" {
		return invalidRequest("email and password are required")
	}
	if len(req.Password) > passhash.MaxBytes {
		return invalidRequest("password must be at most 72 bytes")
	}
	if len(req.DeviceName) > 100 {
		return invalidRequest("device_name must be at most 100 bytes")
	}
	ctx := s.ctx(c)
	email, err := normalizeEmail(req.Email)
	var u *models.User
	if err != nil {
		// Malformed: no account can have it, but it costs and counts
		// what an unknown address does.
		email = throttleKey(req.Email)
	} else if u, err = s.userByEmail(ctx, email); err != nil {
		return err
	}
	if err := s.checkAccountPassword(ctx, email, u, req.Password); err != nil {
		return err
	}
	// Only after the right password: a wrong one stays 401 with the same
	// work, so this answer tells nothing to who does not know it.
	if s.cfg.Accounts.RequireVerifiedEmail && u.EmailVerifiedAt == nil {
		return errEmailNotVerified
	}
	t, err := s.tokens.Login(ctx, u.ID, u.PasswordHash, s.device(c, req.DeviceName))
	if err != nil {
		return err
	}
	if t.MFA != nil {
		s.writeMFAChallenge(c, t.MFA)
		return nil
	}
	s.writeTokens(c, http.StatusOK, t, mode)
	return nil
}

// userByEmail is the account of a normalized email; nil when there is none.
func (s *server) userByEmail(ctx context.Context, email string) (*models.User, error) {
	u, err := s.tokens.UserByEmail(ctx, email)
	if errors.Is(err, strategy.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// checkAccountPassword compares pw with the password of u (nil: no such
// account) under the brute-force throttle of email: a locked email is
// refused before any hashing, with 429 and Retry-After, even with the
// right password; a wrong password counts a failure; a right one starts
// the count over. Every failure is recorded in the audit trail.
func (s *server) checkAccountPassword(ctx context.Context, email string, u *models.User, pw string) error {
	var uid uint64
	if u != nil {
		uid = u.ID
	}
	after, err := s.throttle.Check(ctx, email)
	if err != nil {
		return err
	}
	if after > 0 {
		s.record(ctx, audit.Event{Action: audit.Login, Result: audit.Throttled, UserID: uid, Details: map[string]any{"retry_after_s": int(after / time.Second)}})
		return rateLimited(after)
	}
	ok := false
	if u == nil {
		err = s.hasher.CompareDummy(ctx, pw)
	} else {
		ok, err = s.hasher.Compare(ctx, u.PasswordHash, pw)
	}
	if err != nil {
		return err
	}
	if !ok {
		locked, err := s.throttle.Fail(ctx, email)
		if err != nil {
			return err
		}
		details := map[string]any{"reason": "invalid_credentials"}
		if locked > 0 {
			details["locked_for_s"] = int(locked / time.Second)
		}
		s.record(ctx, audit.Event{Action: audit.Login, Result: audit.Failure, UserID: uid, Details: details})
		return strategy.ErrInvalidCredentials
	}
	return s.throttle.Succeed(ctx, email)
}

// record writes an audit event that changes nothing else (a failure): a
// failure to record it is logged, not answered.
func (s *server) record(ctx context.Context, ev audit.Event) {
	if err := audit.Record(ctx, s.db, s.now(), ev); err != nil {
		s.log.WarnContext(ctx, "recording an audit event failed", "action", ev.Action, "err", err)
	}
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh takes the refresh token from the JSON body or, failing that,
// from the cookie (with the CSRF check). A token that came from the cookie
// goes back only in the cookie, whatever X-Auth-Mode says: body mode needs
// the token in the body. A refused token clears the cookie only when it
// came from the cookie: a token in the body says nothing about the cookie,
// and a forged request with a bogus one must not sign the browser out.
func (s *server) refresh(c *gin.Context) error {
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	body, err := readJSONBody(c)
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
	fromCookie := raw == ""
	if fromCookie {
		if mode == modeBody {
			return invalidRequest("in body mode the refresh_token is required in the JSON body")
		}
		cookie, err := c.Cookie(refreshCookie)
		if err != nil || cookie == "" {
			return invalidRequest("a refresh_token is required, in the JSON body or the refresh_token cookie")
		}
		if !s.csrfOK(c) {
			return errCSRF
		}
		raw = cookie
		mode = modeCookie
	}
	t, err := s.tokens.Refresh(s.ctx(c), raw)
	if err != nil {
		if api := toAPI(err); fromCookie && api.Status == http.StatusUnauthorized {
			s.clearRefreshCookie(c)
		}
		return err
	}
	s.writeTokens(c, http.StatusOK, t, mode)
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
	aal := cl.AAL
	if aal == "" {
		aal = strategy.AAL1
	}
	if c.Request.URL.RawQuery != "" {
		switch want := c.Query("aal"); want {
		case "", strategy.AAL1:
		case strategy.AAL2:
			if aal != strategy.AAL2 {
				s.writeError(c, errInsufficientAAL)
				return
			}
		default:
			s.writeError(c, invalidRequest("aal must be aal1 or aal2"))
			return
		}
	}
	bp := verifyBuffers.Get().(*[]byte)
	buf := append((*bp)[:0], `{"active":true,"sub":"`...)
	buf = strconv.AppendUint(buf, p.UserID, 10)
	buf = append(buf, `","exp":`...)
	buf = strconv.AppendInt(buf, cl.ExpiresAt.Unix(), 10)
	buf = append(buf, `,"iat":`...)
	buf = strconv.AppendInt(buf, cl.IssuedAt.Unix(), 10)
	buf = append(buf, `,"jti":`...)
	buf = appendJSONString(buf, cl.ID)
	buf = append(buf, `,"sid":`...)
	buf = appendJSONString(buf, p.LoginID)
	buf = append(buf, `,"aal":`...)
	buf = appendJSONString(buf, aal)
	buf = append(buf, `,"amr":[`...)
	if len(cl.AMR) == 0 && cl.AAL == "" {
		buf = append(buf, `"pwd"`...)
	}
	for i, m := range cl.AMR {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, m)
	}
	buf = append(buf, ']')
	buf = append(buf, s.verifyTail()...)
	h := c.Writer.Header()
	h["X-Auth-User-Id"] = []string{strconv.FormatUint(p.UserID, 10)}
	h["X-Auth-Aal"] = aalHeader(aal)
	h["Content-Type"] = jsonContentType
	c.Writer.WriteHeader(http.StatusOK)
	_, _ = c.Writer.Write(buf)
	*bp = buf
	verifyBuffers.Put(bp)
}

// aalHeader is the X-Auth-AAL value, without an allocation for the two
// levels there are.
func aalHeader(aal string) []string {
	switch aal {
	case strategy.AAL1:
		return aal1Header
	case strategy.AAL2:
		return aal2Header
	}
	return []string{aal}
}

var (
	aal1Header = []string{strategy.AAL1}
	aal2Header = []string{strategy.AAL2}
)

// verifyBuffers recycle verify's answer buffers.
var verifyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 384); return &b }}

var jsonContentType = []string{"application/json; charset=utf-8"}

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
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	t, err := s.tokens.LogoutOthers(s.ctx(c), principal(c), s.device(c, ""))
	if err != nil {
		return err
	}
	if t == nil {
		c.Status(http.StatusNoContent)
		return nil
	}
	s.writeTokens(c, http.StatusOK, t, mode)
	return nil
}

// registerPending answers a registration under
// accounts.require_verified_email: 201 with the same body, after the same
// work, whether the address was free (the new account gets verify_email)
// or already had an account (its owner gets email_taken instead), so that
// sign-up does not tell who has an account. The account cannot log in
// before its address is verified, so the answer carries no id.
func (s *server) registerPending(c *gin.Context, email string, u *models.User, regErr error) error {
	ctx := s.ctx(c)
	switch {
	case regErr == nil:
		s.queueVerification(ctx, u)
	case errors.Is(regErr, strategy.ErrEmailTaken):
		err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
			return s.mail.Queue(ctx, tx, mail.Draft{Kind: mail.EmailTaken, To: email})
		})
		if err != nil {
			return err
		}
		s.mail.Notify()
	default:
		return regErr
	}
	c.JSON(http.StatusCreated, gin.H{
		"message": "account created: follow the link in the verification mail to log in",
		"user":    gin.H{"email": email, "email_verified": false},
	})
	return nil
}
