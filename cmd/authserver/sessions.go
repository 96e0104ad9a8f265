package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func sessionsCmd(configPath *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List and revoke an account's logins",
	}
	var user string
	list := &cobra.Command{
		Use:   "list --user EMAIL",
		Short: "List an account's live logins: login id, device, times",
		Long: `list prints the live logins of an account: under the strategies that track
devices (single_device, multi_device, session_table) the strategy's devices,
with the IP and user agent of their login; under the others the logins whose
refresh token still works. LAST_SEEN is the last request (device strategies,
updated at most once a minute) or the last refresh.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			devs, err := srv.Sessions(ctx, user)
			if err != nil {
				return noUser(err, user)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LOGIN_ID\tDEVICE\tCREATED\tLAST_SEEN\tIP\tUSER_AGENT")
			for _, d := range devs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, dash(d.Name), d.CreatedAt.UTC().Format(time.RFC3339),
					d.LastSeenAt.UTC().Format(time.RFC3339), dash(d.IP), dash(d.UserAgent))
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&user, "user", "", "the account's email (required)")
	_ = list.MarkFlagRequired("user")

	var (
		revokeUser, id string
		all            bool
	)
	revoke := &cobra.Command{
		Use:   "revoke --user EMAIL (--id LOGIN_ID | --all)",
		Short: "End one login of an account, or all of them, on every running instance",
		Long: `revoke ends logins through the running strategy, as the API's logout-all or
DELETE /sessions/{id} would, and records an admin audit event. It works from
any process on the same database: every running instance rejects the revoked
access tokens within cache.max_staleness (it reads the invalidation outbox
four times within it). Under stateless access tokens cannot be revoked (only
refresh tokens); ending one login of password_key, valid_date or
token_version revokes its refresh token only (use --all to end the access
tokens).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (id != "") {
				return errors.New("give exactly one of --id LOGIN_ID and --all")
			}
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			ended, err := srv.RevokeSessions(ctx, revokeUser, id, all)
			if err != nil {
				if all {
					return noUser(err, revokeUser)
				}
				return noLogin(err, revokeUser, id)
			}
			what := "login " + id
			if all {
				what = "every login"
			}
			cfg := srv.Config()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "revoked %s of %s (strategy %s)\n", what, revokeUser, cfg.Strategy)
			if ended {
				fmt.Fprintf(out, "its access tokens are rejected by every running instance within cache.max_staleness (%s)\n", cfg.Cache.MaxStaleness)
			} else {
				fmt.Fprintf(out, "its refresh tokens are revoked; the %s strategy cannot end its access tokens, which live until they expire (jwt.access_ttl %s)\n", cfg.Strategy, cfg.JWT.AccessTTL)
			}
			return nil
		},
	}
	f := revoke.Flags()
	f.StringVar(&revokeUser, "user", "", "the account's email (required)")
	f.StringVar(&id, "id", "", "the login id to end (sessions list shows them)")
	f.BoolVar(&all, "all", false, "end every login of the account")
	_ = revoke.MarkFlagRequired("user")

	cmd.AddCommand(list, revoke)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
