package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/config"
)

func keysCmd(configPath *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the server secrets that sign access tokens",
		Long: `Access tokens carry a kid header naming the server secret they were signed
under (a truncated hash of it, which reveals nothing). The active secret
signs; previous secrets only verify, so that tokens signed before a rotation
keep working until they expire. See docs/operating.md, "Rotating the
server secret".`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the key ids of the server secrets (never the secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath)
			if err != nil {
				return err
			}
			if err := secretFileExists(cfg); err != nil {
				return err
			}
			keys, err := serverKeys(cfg)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KID\tSTATUS\tSOURCE")
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s\n", k.kid, k.status, k.source)
			}
			return w.Flush()
		},
	})
	var keep int
	rotate := &cobra.Command{
		Use:   "rotate [--keep N]",
		Short: "Make a new active secret in jwt.secret_file, keeping the old one as previous",
		Long: `rotate writes a fresh random secret as the active one at the top of
jwt.secret_file and keeps the N most recent earlier secrets (--keep, default 1:
the one that was active) as previous secrets, which verify but never sign.
Restart every instance afterwards: a server reads the file when it starts.

It refuses when jwt.secret is set: then the active secret comes from
jwt.secret (the config file or AUTH_JWT_SECRET), not from the file, and a
rotated file would change nothing. Rotate such a setup by hand: the new
secret in jwt.secret, the old one in jwt.previous_secrets.

--keep 0 drops every earlier secret: every access token in circulation is
rejected at once (the emergency "log everyone out"; refresh tokens keep
working and hand out tokens under the new secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keep < 0 {
				return errors.New("--keep must be 0 or more")
			}
			cfg, err := config.Load(*configPath)
			if err != nil {
				return err
			}
			if cfg.JWT.Secret != "" {
				return errors.New("jwt.secret is set, so the active secret comes from it and not from jwt.secret_file: rotating the file would change nothing. " +
					"Rotate by hand: put a new secret (openssl rand -base64 32) in jwt.secret and the old one in jwt.previous_secrets, restart, and drop the old one after jwt.access_ttl")
			}
			if err := secretFileExists(cfg); err != nil {
				return err
			}
			kept, err := config.RotateSecretFile(cfg.JWT.SecretFile, keep)
			if err != nil {
				return err
			}
			keys, err := serverKeys(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "new active secret: kid %s in %s; %d previous kept\n", keys[0].kid, cfg.JWT.SecretFile, kept)
			fmt.Fprintf(out, "restart every instance now; drop the previous secrets once jwt.access_ttl (%s) has passed\n", cfg.JWT.AccessTTL)
			return nil
		},
	}
	rotate.Flags().IntVar(&keep, "keep", 1, "how many earlier secrets to keep as previous (0: log everyone out)")
	cmd.AddCommand(rotate)
	return cmd
}

// secretFileExists refuses to go on when the secrets come from a file
// that does not exist: in the wrong directory, the relative default path
// names nothing, and a new secret there would serve no server.
func secretFileExists(cfg *config.Config) error {
	if cfg.JWT.Secret != "" {
		return nil
	}
	if _, err := os.Stat(cfg.JWT.SecretFile); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("jwt.secret_file %s does not exist: run this where the server runs (the path is relative to the working directory), or start the server once", cfg.JWT.SecretFile)
	}
	return nil
}
