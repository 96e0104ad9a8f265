package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/routes"
	"github.com/revocable/authserver/strategy"
)

func serve(ctx context.Context, configPath string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	secret, err := cfg.Secret(log)
	if err != nil {
		return err
	}
	db, err := models.Open(cfg.Database.Driver, cfg.Database.DSN)
	if err != nil {
		return err
	}
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	tokens, err := strategy.New(db, cfg.Strategy, cfg.ServiceConfig(secret))
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	handler, err := routes.New(routes.Deps{Config: cfg, DB: db, Tokens: tokens, Log: log})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.Server.Addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go prune(ctx, log, tokens, cfg.Database.PruneInterval)

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("authserver listening", "addr", cfg.Server.Addr, "strategy", cfg.Strategy, "database", cfg.Database.Driver)
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// prune deletes expired and revoked rows every interval until ctx ends.
func prune(ctx context.Context, log *slog.Logger, tokens *strategy.Service, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := tokens.Prune(ctx)
			if err != nil {
				log.Warn("prune failed", "err", err)
				continue
			}
			if n > 0 {
				log.Info("pruned expired and revoked rows", "rows", n)
			}
		}
	}
}
