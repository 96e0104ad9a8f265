// Command authserver is the auth server's one binary: `serve` (the default)
// runs the server, `compare` measures the revocation strategies side by
// side, `demo` runs the teaching page, and the admin commands (`user`,
// `sessions`, `prune`, `config check`, `keys`) operate a deployment. This
// package only wires the other packages together.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "authserver:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:           "authserver",
		Short:         "An authentication server whose JWTs can be revoked",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), configPath)
		},
	}
	root.PersistentFlags().StringVar(&configPath, "config", "", "path of the config file (default: ./config.yaml if present, else built-in defaults)")
	root.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Run the server (the default command)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), configPath)
		},
	})
	root.AddCommand(compareCmd())
	root.AddCommand(demoCmd())
	root.AddCommand(userCmd(&configPath), sessionsCmd(&configPath), pruneCmd(&configPath), configCmd(&configPath), keysCmd(&configPath), devCmd(&configPath))
	return root
}
