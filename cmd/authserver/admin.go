package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/config"
)

// The admin commands (user, sessions, prune) build the server the way
// serve does, from the same configuration (--config, config.yaml, AUTH_*),
// through authserver.New, but start no listener and no background work:
// they change the database through the token service, whose transactions
// write the outbox rows that every running instance reads. So a command
// run in its own process, on the same database, takes effect on every
// running server within cache.max_staleness.

// adminAgent is the user agent of the CLI's audit events.
const adminAgent = "authserver admin CLI"

// openAdmin loads the configuration and builds the server for an admin
// command. It refuses to create what a server creates on first start (the
// secret file, the SQLite file): an admin command run in the wrong
// directory, where a relative path names nothing, must say so rather than
// work on an empty database or under a new secret.
func openAdmin(ctx context.Context, configPath string) (context.Context, *authserver.Server, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, nil, err
	}
	if err := mustExist(cfg); err != nil {
		return nil, nil, err
	}
	log, err := authserver.NewLogger(cfg, os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	secret, previous, err := cfg.Secrets(log)
	if err != nil {
		return nil, nil, err
	}
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, Log: log, Secret: secret, PreviousSecrets: previous, Mailer: discardMailer{}})
	if err != nil {
		return nil, nil, err
	}
	return audit.WithMeta(ctx, audit.Meta{UserAgent: adminAgent}), srv, nil
}

// mustExist checks that the secret file (when the secrets come from it)
// and the SQLite database file exist.
func mustExist(cfg *config.Config) error {
	if err := secretFileExists(cfg); err != nil {
		return err
	}
	if cfg.Database.Driver == "sqlite" {
		path, _, _ := strings.Cut(cfg.Database.DSN, "?")
		path = strings.TrimPrefix(path, "file:")
		if !strings.Contains(cfg.Database.DSN, ":memory:") && !strings.Contains(cfg.Database.DSN, "mode=memory") {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("the SQLite database %s does not exist: run this where the server runs (the path is relative to the working directory), or start the server once", path)
			}
		}
	}
	return nil
}
