package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/demo"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/strategy"
)

// demoAccessTTL is the access token lifetime of the demo: short enough that
// the page's countdown visibly reaches zero and the grid shows token_expired.
const demoAccessTTL = 2 * time.Minute

func demoCmd() *cobra.Command {
	var addr string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run every strategy side by side behind the teaching page",
		Long: `demo starts one server per strategy in this process, each on its own fresh
SQLite database in a temporary directory (removed on exit), under
/s/{strategy}/api/v1, and serves the demo page at /. The page signs in a few
simulated devices and shows, after each action, which tokens every strategy
still accepts.

It does not read config.yaml. It uses settings that suit a demo and nothing
else: access tokens live 2 minutes, the password-reset token is returned in
the API answer (reset.expose_token), the refresh cookie is not Secure, bcrypt
runs at its lowest cost, and the secret is random per run. It listens on
loopback unless --addr says otherwise; do not expose it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return runDemo(ctx, addr, cmd.OutOrStdout(), log)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8090", "listen address")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log every request")
	return cmd
}

// runDemo builds every strategy's server, serves them and the page on addr
// until ctx ends, then removes the databases.
func runDemo(ctx context.Context, addr string, out io.Writer, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "authserver-demo-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	secret := []byte(strategy.NewSecret(32))

	gin.SetMode(gin.ReleaseMode)
	mux := http.NewServeMux()
	var targets []demo.Target
	for _, name := range strategy.Names() {
		h, cleanup, err := buildDemoStrategy(ctx, name, filepath.Join(dir, name+".db"), secret, log)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer cleanup()
		prefix := "/s/" + name
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
		targets = append(targets, demo.Target{Name: name, API: prefix + "/api/v1"})
	}
	page, err := demo.Handler(targets)
	if err != nil {
		return err
	}
	mux.Handle("/", page)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := httpServer("", mux)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(out, "authserver demo: open http://%s/ (%d strategies, demo settings; Ctrl-C to stop)\n", ln.Addr(), len(targets))
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("the demo is reachable from other machines: its settings (reset tokens in API answers, a 2-minute access TTL, bcrypt cost 4) are for a demo only", "addr", ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// buildDemoStrategy assembles strategy name's server on a fresh SQLite
// database at path, with the demo settings and demo mode on (the state
// endpoint /api/v1/demo/state), and runs its background work. cleanup
// stops it and closes the database.
func buildDemoStrategy(ctx context.Context, name, path string, secret []byte, log *slog.Logger) (http.Handler, func(), error) {
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Database.Driver, cfg.Database.DSN = "sqlite", path
	cfg.JWT.AccessTTL = demoAccessTTL
	cfg.Reset.ExposeToken = true
	cfg.Cookies.Secure = false
	cfg.Password.BcryptCost = 4
	cfg.Demo.Enabled = true
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, Secret: secret, Log: log.With("strategy", name), Mailer: discardMailer{}})
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Stop()
		return nil, nil, err
	}
	return srv.Handler(), func() { _ = srv.Stop() }, nil
}

// discardMailer drops mail: the demo returns reset tokens in the API
// answer (reset.expose_token), so the log-only sender's line in the
// terminal would only be noise.
type discardMailer struct{}

func (discardMailer) Send(context.Context, *mail.Message) error { return nil }
