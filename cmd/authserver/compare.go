package main

import (
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/compare"
	"github.com/revocable/authserver/strategy"
)

func compareCmd() *cobra.Command {
	var o compare.Options
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Measure what every strategy guarantees and costs, side by side",
		Long: `compare runs every strategy on a fresh database behind an in-process server
and drives the same scenarios through the HTTP API: which guarantees hold
(pass / FAIL / n/a, against what GET /api/v1/strategy claims) and what they
cost (DB queries per request, writes per login, stored bytes, verify latency).
It exits non-zero when a strategy does not do what it claims.

It does not read config.yaml: it uses the built-in defaults with bcrypt cost 4.
With --driver mysql it creates the databases <dbname>_cmp_<strategy> on the
server of --dsn and drops them afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			o.Out, o.Progress = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return compare.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Driver, "driver", "sqlite", "database driver: sqlite or mysql")
	f.StringVar(&o.DSN, "dsn", "", "database DSN (sqlite: default a temporary directory; foo.db uses foo_cmp_<strategy>.db; mysql: required, its database name prefixes <dbname>_cmp_<strategy>)")
	f.StringSliceVar(&o.Strategies, "strategies", strategy.Names(), "comma-separated strategies to compare")
	f.StringVar(&o.Format, "format", "table", "output format: "+strings.Join(compare.Formats, ", "))
	f.IntVar(&o.Requests, "requests", compare.DefaultRequests, "verify requests timed per strategy")
	return cmd
}
