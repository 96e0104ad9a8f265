package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/devseed"
)

// seedPassword is the password of every seeded account unless --password
// says otherwise: a development database's, printed on every run.
const seedPassword = "seed-password"

func devCmd(configPath *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Development tools (never on a production database)",
	}
	var (
		o        devseed.Options
		password string
		tokens   string
		force    bool
	)
	seed := &cobra.Command{
		Use:   "seed",
		Short: "Load many accounts with live logins into a development database",
		Long: `seed inserts --users accounts, seed-1@<domain> to seed-N@<domain>, each with
--logins live logins made as the configured strategy makes them (session rows
for session_table, the device map for multi_device, ...), in transactions of
--batch accounts with multi-row INSERTs. Every account has the same password,
hashed once: this is a development tool. It refuses a database that already
has users, or that is not on this machine (SQLite, a loopback address or a
Unix socket), unless --force. With --tokens FILE it writes one line per
login: user id, email, access token, refresh token (tab-separated), for load
tests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Refuse a remote database before opening (and migrating) it.
			cfg, err := config.Load(*configPath)
			if err != nil {
				return err
			}
			if !force {
				if err := devseed.CheckLocal(cfg.Database.Driver, cfg.Database.DSN); err != nil {
					return err
				}
			}
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			o.Progress = cmd.ErrOrStderr()
			var w *bufio.Writer
			if tokens != "" {
				f, err := os.OpenFile(tokens, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return fmt.Errorf("--tokens: %w", err)
				}
				defer f.Close()
				w = bufio.NewWriterSize(f, 1<<20)
				o.Tokens = w
			}
			res, err := srv.Seed(ctx, password, force, o)
			if w != nil {
				if ferr := w.Flush(); err == nil && ferr != nil {
					err = fmt.Errorf("--tokens: %w", ferr)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seeded %d users (ids %d-%d) with %d logins in %s; password %q\n",
				res.Users, res.FirstID, res.LastID, res.Logins, res.Took.Round(1e6), password)
			return nil
		},
	}
	f := seed.Flags()
	f.IntVar(&o.Users, "users", 1000, "how many accounts")
	f.IntVar(&o.Logins, "logins", 1, "live logins per account")
	f.IntVar(&o.Batch, "batch", 1000, "accounts per transaction")
	f.IntVar(&o.Writers, "writers", 2, "transactions at once (SQLite: one writer anyway)")
	f.StringVar(&o.Domain, "domain", "seed.test", "domain of the seeded emails")
	f.StringVar(&password, "password", seedPassword, "password of every seeded account")
	f.StringVar(&tokens, "tokens", "", "file to write the logins' tokens to")
	f.BoolVar(&force, "force", false, "seed even a database that has users or is not on this machine")
	cmd.AddCommand(seed)
	return cmd
}
