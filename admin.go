package authserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/metrics"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/strategy"
)

// Administration: what the admin CLI does (authserver user ..., sessions
// ...), for applications that embed the server too. Emails are taken as
// typed and normalized here (models.NormalizeEmail), like the API does.
// Audit events record the metadata of ctx (audit.WithMeta): the CLI names
// itself as the user agent.

// CreateUser creates an account with password, under the API's password
// rules (password.min_length characters, at most 72 bytes).
func (s *Server) CreateUser(ctx context.Context, email, password string) (*models.User, error) {
	email, err := models.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := passhash.CheckNew(password, s.cfg.Password.MinLength); err != nil {
		return nil, fmt.Errorf("the password %w", err)
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	return s.tokens.AdminCreateUser(ctx, email, hash)
}

// User is the account of email; strategy.ErrNotFound when there is none.
func (s *Server) User(ctx context.Context, email string) (*models.User, error) {
	email, err := models.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	return s.tokens.UserByEmail(ctx, email)
}

// Users lists accounts by id, those after afterID, at most limit.
func (s *Server) Users(ctx context.Context, afterID uint64, limit int) ([]models.User, error) {
	return s.tokens.Users(ctx, afterID, limit)
}

// DeleteUser deletes the account of email and everything of it; its
// tokens are rejected like after the owner's own deletion.
func (s *Server) DeleteUser(ctx context.Context, email string) (*models.User, error) {
	u, err := s.User(ctx, email)
	if err != nil {
		return nil, err
	}
	return u, s.tokens.AdminDeleteUser(ctx, u.ID)
}

// Unlock lifts the brute-force lock of email and forgets its failures,
// whether or not an account has it (the throttle is keyed by the email,
// so that it reveals no account).
func (s *Server) Unlock(ctx context.Context, email string) error {
	email, err := models.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.throttle.Unlock(ctx, email); err != nil {
		return err
	}
	ev := audit.Event{Action: audit.AdminUnlock, Result: audit.Success}
	switch u, err := s.tokens.UserByEmail(ctx, email); {
	case err == nil:
		ev.UserID = u.ID
	case !errors.Is(err, strategy.ErrNotFound):
		return err
	}
	return s.tokens.AdminRecord(ctx, ev)
}

// Sessions lists the live logins of the account of email.
func (s *Server) Sessions(ctx context.Context, email string) ([]strategy.Device, error) {
	u, err := s.User(ctx, email)
	if err != nil {
		return nil, err
	}
	return s.tokens.AdminSessions(ctx, u.ID)
}

// RevokeSessions ends every login of the account of email (all), or the
// login loginID, through the running strategy (see
// strategy.Service.AdminRevoke). Every instance on the database rejects
// the revoked access tokens within cache.max_staleness, whichever process
// this runs in. accessEnded is false when the strategy can only revoke
// the refresh tokens.
func (s *Server) RevokeSessions(ctx context.Context, email, loginID string, all bool) (accessEnded bool, err error) {
	u, err := s.User(ctx, email)
	if err != nil {
		return false, err
	}
	if accessEnded, err = s.tokens.AdminRevoke(ctx, u.ID, loginID, all); err != nil {
		return false, err
	}
	s.metrics.Revocation(metrics.RevokeAdmin)
	return accessEnded, nil
}

// ResetMFA removes every second factor and recovery code of the account
// of email and ends every login of it (the account's owner lost their
// authenticator and proved who they are some other way). It returns how
// many factors were removed; an audit event records it.
func (s *Server) ResetMFA(ctx context.Context, email string) (removed int64, err error) {
	u, err := s.User(ctx, email)
	if err != nil {
		return 0, err
	}
	if removed, err = s.tokens.AdminMFAReset(ctx, u.ID); err != nil {
		return 0, err
	}
	s.metrics.Revocation(metrics.RevokeAdmin)
	return removed, nil
}
