package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// maxPasswordLine bounds what user create reads from standard input.
const maxPasswordLine = 1 << 10

func userCmd(configPath *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list, delete and unlock accounts",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create EMAIL",
		Short: "Create an account; the password is read from standard input",
		Long: `create makes an account under the API's rules (a valid email, password.min_length
characters, at most 72 bytes). The password is the first line of standard
input, never a flag, so that it stays out of shell history and ps:

  printf '%s\n' "$PASSWORD" | authserver user create ann@example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			u, err := srv.CreateUser(ctx, args[0], pw)
			if errors.Is(err, strategy.ErrEmailTaken) {
				return fmt.Errorf("an account with the email %s exists already", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created user %d %s\n", u.ID, u.Email)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the accounts: id, email, creation time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tEMAIL\tCREATED")
			var after uint64
			for {
				users, err := srv.Users(ctx, after, 500)
				if err != nil {
					return err
				}
				for _, u := range users {
					fmt.Fprintf(w, "%d\t%s\t%s\n", u.ID, u.Email, u.CreatedAt.UTC().Format(time.RFC3339))
					after = u.ID
				}
				if len(users) < 500 {
					break
				}
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "delete EMAIL",
		Short: "Delete an account and everything of it; its tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			u, err := srv.DeleteUser(ctx, args[0])
			if err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %d %s\n", u.ID, u.Email)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "unlock EMAIL",
		Short: "Lift the brute-force lock of an email and forget its failed logins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Checked before the server is built: a typo costs nothing.
			email, err := models.NormalizeEmail(args[0])
			if err != nil {
				return err
			}
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			if err := srv.Unlock(ctx, email); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unlocked %s\n", email)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "mfa-reset EMAIL",
		Short: "Remove every second factor of an account and end all its logins",
		Long: `mfa-reset removes the account's TOTP factors and recovery codes, ends every
login of it (through the running strategy, as logout-all does) and writes an
admin_mfa_reset audit event. The next login needs the password alone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			n, err := srv.ResetMFA(ctx, args[0])
			if err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d second factor(s) of %s; every login ended\n", n, args[0])
			return nil
		},
	})
	return cmd
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLine), maxPasswordLine).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input (printf '%s\\n' \"$PASSWORD\" | authserver user create EMAIL)")
	}
	return line, nil
}

// noUser turns strategy.ErrNotFound into a message naming the email.
func noUser(err error, email string) error {
	if errors.Is(err, strategy.ErrNotFound) {
		return fmt.Errorf("no account has the email %s", email)
	}
	return err
}

// noLogin turns strategy.ErrNotFound into a message naming what was not
// found.
func noLogin(err error, email, id string) error {
	if errors.Is(err, strategy.ErrNotFound) {
		return fmt.Errorf("no account has the email %s, or it has no live login %s", email, id)
	}
	return err
}
