package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func pruneCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete expired and revoked rows and old audit events now",
		Long: `prune does once what a running server does every database.prune_interval:
it deletes expired or revoked refresh tokens and sessions, used or expired
reset tokens, old invalidation outbox rows, audit events older than
audit.retention and forgotten brute-force counts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			st, err := srv.PruneStats(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %d rows\n", st.Rows)
			// How it went, apart from the count scripts read.
			fmt.Fprintf(cmd.ErrOrStderr(), "prune took %s in %d batches, the longest %s, %d over 100ms\n",
				st.Took.Round(time.Millisecond), st.Batches, st.Longest.Round(time.Microsecond), st.Over)
			return nil
		},
	}
}
