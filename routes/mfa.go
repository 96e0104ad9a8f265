package routes

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// The second factor's routes: enrolling and removing TOTP, recovery codes,
// and the second step of a login. Wrong codes count in the account's
// brute-force throttle like wrong passwords, and a locked account is
// refused before any code is looked at.

var errInsufficientAAL = &apiError{Status: http.StatusForbidden, Code: "insufficient_aal", Message: "this needs a login with a second factor (aal2)"}

// requireAAL2 refuses a caller whose login did not use a second factor.
func requireAAL2(p *strategy.Principal) error {
	if strategy.AssuranceOf(p.Claims).AAL != strategy.AAL2 {
		return errInsufficientAAL
	}
	return nil
}

// codeFailed counts a wrong code against the account's throttle and
// records it, then returns err.
func (s *server) codeFailed(ctx context.Context, u *models.User, where string, err error) error {
	locked, terr := s.throttle.Fail(ctx, u.Email)
	if terr != nil {
		return terr
	}
	details := map[string]any{"reason": where}
	if locked > 0 {
		details["locked_for_s"] = int(locked / time.Second)
	}
	s.record(ctx, audit.Event{Action: audit.MFAFailed, Result: audit.Failure, UserID: u.ID, Details: details})
	return err
}

// throttled refuses a locked account, as a login does.
func (s *server) throttled(ctx context.Context, u *models.User) error {
	after, err := s.throttle.Check(ctx, u.Email)
	if err != nil {
		return err
	}
	if after > 0 {
		s.record(ctx, audit.Event{Action: audit.MFAFailed, Result: audit.Throttled, UserID: u.ID, Details: map[string]any{"retry_after_s": int(after / time.Second)}})
		return rateLimited(after)
	}
	return nil
}

type enrollRequest struct {
	Password string `json:"password"`
}

// enrollTOTP answers 201 with the new factor's secret, once: it is never
// shown again.
func (s *server) enrollTOTP(c *gin.Context) error {
	var req enrollRequest
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
	e, err := s.tokens.EnrollTOTP(s.ctx(c), principal(c), u.PasswordHash, u.Email)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{
		"id": e.ID, "type": strategy.FactorTOTP, "secret": e.Secret, "otpauth_uri": e.OTPAuthURI,
		"expires_in": int64(e.ExpiresAt.Sub(s.now()) / time.Second),
	})
	return nil
}

type codeRequest struct {
	Code string `json:"code"`
}

// confirmTOTP confirms a factor with a current code: 200 with the
// recovery codes and fresh aal2 tokens.
func (s *server) confirmTOTP(c *gin.Context) error {
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	var req codeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return invalidRequest("code is required")
	}
	u, err := s.currentUser(c)
	if err != nil {
		return err
	}
	ctx := s.ctx(c)
	if err := s.throttled(ctx, u); err != nil {
		return err
	}
	t, codes, err := s.tokens.ConfirmTOTP(ctx, principal(c), c.Param("id"), req.Code, s.device(c, ""))
	if errors.Is(err, strategy.ErrMFACodeInvalid) {
		return s.codeFailed(ctx, u, "confirm", err)
	}
	if err != nil {
		return err
	}
	s.writeTokensWith(c, http.StatusOK, t, mode, gin.H{"recovery_codes": codes, "aal": strategy.AAL2})
	return nil
}

type removeFactorRequest struct {
	Code     string `json:"code"`
	Password string `json:"password"`
}

// removeTOTP removes a factor, from an aal2 login, with a current code
// or the password. 204 where the strategy keeps the caller's login; 200
// with fresh tokens where ending the other logins ended every login.
func (s *server) removeTOTP(c *gin.Context) error {
	p := principal(c)
	if err := requireAAL2(p); err != nil {
		return err
	}
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	var req removeFactorRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if (req.Code == "") == (req.Password == "") {
		return invalidRequest("exactly one of code and password is required")
	}
	ctx := s.ctx(c)
	var u *models.User
	if req.Password != "" {
		if u, err = s.checkPassword(c, req.Password); err != nil {
			return err
		}
	} else {
		if u, err = s.currentUser(c); err != nil {
			return err
		}
		if err := s.throttled(ctx, u); err != nil {
			return err
		}
	}
	hash := ""
	if req.Password != "" {
		hash = u.PasswordHash
	}
	t, err := s.tokens.RemoveFactor(ctx, p, c.Param("id"), req.Code, hash, s.device(c, ""))
	if errors.Is(err, strategy.ErrMFACodeInvalid) {
		return s.codeFailed(ctx, u, "remove", err)
	}
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

// listFactors lists the caller's factors, without secrets.
func (s *server) listFactors(c *gin.Context) error {
	fs, left, err := s.tokens.Factors(c.Request.Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	out := make([]gin.H, 0, len(fs))
	for _, f := range fs {
		h := gin.H{"id": f.ID, "type": f.Type, "confirmed": f.Confirmed, "created_at": f.CreatedAt.UTC()}
		if f.ConfirmedAt != nil {
			h["confirmed_at"] = f.ConfirmedAt.UTC()
		}
		if f.LastUsedAt != nil {
			h["last_used_at"] = f.LastUsedAt.UTC()
		}
		if f.ExpiresAt != nil {
			h["expires_at"] = f.ExpiresAt.UTC()
		}
		out = append(out, h)
	}
	c.JSON(http.StatusOK, gin.H{"factors": out, "recovery_codes_remaining": left})
	return nil
}

// regenerateRecoveryCodes makes a new set from an aal2 login; the old set
// dies.
func (s *server) regenerateRecoveryCodes(c *gin.Context) error {
	p := principal(c)
	if err := requireAAL2(p); err != nil {
		return err
	}
	codes, err := s.tokens.RegenerateRecoveryCodes(s.ctx(c), p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"recovery_codes": codes})
	return nil
}

type mfaVerifyRequest struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
	DeviceName   string `json:"device_name"`
}

// mfaVerify is the second step of a login: the mfa_token with a TOTP code
// or a recovery code gives the tokens of the login.
func (s *server) mfaVerify(c *gin.Context) error {
	mode, err := authModeOf(c)
	if err != nil {
		return err
	}
	var req mfaVerifyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.MFAToken == "" {
		return invalidRequest("mfa_token is required")
	}
	if (req.Code == "") == (req.RecoveryCode == "") {
		return invalidRequest("exactly one of code and recovery_code is required")
	}
	if len(req.DeviceName) > 100 {
		return invalidRequest("device_name must be at most 100 bytes")
	}
	ctx := s.ctx(c)
	u, err := s.tokens.ChallengeUser(ctx, req.MFAToken)
	if err != nil {
		return err
	}
	if err := s.throttled(ctx, u); err != nil {
		return err
	}
	t, err := s.tokens.VerifyMFA(ctx, req.MFAToken, req.Code, req.RecoveryCode, s.device(c, req.DeviceName))
	if errors.Is(err, strategy.ErrMFACodeInvalid) || errors.Is(err, strategy.ErrRecoveryCodeInvalid) {
		// The service recorded the failure; the throttle counts it.
		if _, terr := s.throttle.Fail(ctx, u.Email); terr != nil {
			return terr
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := s.throttle.Succeed(ctx, u.Email); err != nil {
		return err
	}
	if req.RecoveryCode != "" {
		// A spent recovery code is what a thief holding the password
		// would use: the owner hears of it (mail.notify), from the outbox.
		s.notify(ctx, mail.RecoveryCodeUsed, u)
	}
	s.writeTokens(c, http.StatusOK, t, mode)
	return nil
}

// writeMFAChallenge answers a login that needs its second step.
func (s *server) writeMFAChallenge(c *gin.Context, ch *strategy.MFAChallenge) {
	c.JSON(http.StatusOK, gin.H{
		"mfa_required": true, "mfa_token": ch.Token, "factors": ch.Factors, "expires_in": ch.ExpiresIn,
	})
}
