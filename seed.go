package authserver

import (
	"context"
	"fmt"

	"github.com/revocable/authserver/devseed"
	"github.com/revocable/authserver/passhash"
)

// Seed loads o.Users development accounts with o.Logins live logins each,
// all with password (hashed once, at the configured bcrypt cost), as the
// running strategy makes logins: see package devseed. Unless force it
// refuses a database that has users or is not on this machine.
func (s *Server) Seed(ctx context.Context, password string, force bool, o devseed.Options) (devseed.Result, error) {
	if !force {
		if err := devseed.CheckLocal(s.cfg.Database.Driver, s.cfg.Database.DSN); err != nil {
			return devseed.Result{}, err
		}
		if err := devseed.CheckEmpty(ctx, s.db); err != nil {
			return devseed.Result{}, err
		}
	}
	if err := passhash.CheckNew(password, s.cfg.Password.MinLength); err != nil {
		return devseed.Result{}, fmt.Errorf("the password %w", err)
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return devseed.Result{}, err
	}
	return devseed.Run(ctx, s.db, s.tokens, hash, o)
}
