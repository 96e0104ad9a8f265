package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/compare"
	"github.com/revocable/authserver/strategy"
)

func compareCmd() *cobra.Command {
	var (
		o   compare.Options
		out string
	)
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Measure what every strategy guarantees and costs, side by side",
		Long: `compare runs every strategy on a fresh database behind in-process servers
and drives the scenarios of the scenario table (the ones the test suite runs)
through the HTTP API: which guarantees hold (pass / FAIL / n/a, against what
GET /api/v1/strategy claims and what the table expects) and what they cost,
with the verification cache on and off (DB queries per verification, latency,
throughput with concurrent clients, stored bytes) and what each revocation
writes (DB writes and invalidation messages). It exits non-zero when a
strategy does not do what it claims.

It does not read config.yaml: it uses the built-in defaults with bcrypt cost 4
and no rate limits. With --driver mysql or postgres it creates the databases
<dbname>_cmp_<strategy> on the server of --dsn and drops them afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			o.Out, o.Progress = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if out != "" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				defer func() {
					if cerr := f.Close(); cerr != nil && err == nil {
						err = fmt.Errorf("--out: %w", cerr)
					}
				}()
				o.Out = f
			}
			return compare.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Driver, "driver", "sqlite", "database driver: sqlite, mysql or postgres")
	f.StringVar(&o.DSN, "dsn", "", "database DSN (sqlite: default a temporary directory; foo.db uses foo_cmp_<strategy>.db; mysql, postgres: required, its database name prefixes <dbname>_cmp_<strategy>)")
	f.StringSliceVar(&o.Strategies, "strategies", strategy.Names(), "comma-separated strategies to compare")
	f.StringVar(&o.Format, "format", "table", "output format: "+strings.Join(compare.Formats, ", "))
	f.StringVar(&out, "out", "", "write the report to this file instead of standard output")
	f.IntVar(&o.Requests, "requests", compare.DefaultRequests, "sequential verify requests timed per server")
	f.IntVar(&o.Clients, "clients", compare.DefaultClients, "concurrent clients of the throughput measurement")
	f.DurationVar(&o.Duration, "duration", compare.DefaultDuration, "how long each server is loaded by the concurrent clients, in all")
	return cmd
}
