package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/heapfloor"
)

func serve(ctx context.Context, configPath string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	lw := authserver.NewLogWriter(os.Stderr)
	defer lw.Close()
	log, err := authserver.NewLogger(cfg, lw)
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	if heapfloor.Run(ctx, uint64(cfg.Server.HeapFloorMiB)<<20) {
		log.Debug("heap floor set", "mib", cfg.Server.HeapFloorMiB)
	}
	// go-redis reports connection trouble through a logger of its own;
	// send it to ours, at debug level: the feed and the limiter log the
	// outages that matter, once each.
	redis.SetLogger(redisLog{log})
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, Log: log})
	if err != nil {
		return err
	}
	// Read the outbox once before answering, so that the cache is trusted
	// from the first request.
	if err := srv.Start(ctx); err != nil {
		log.Warn("first read of the invalidation outbox failed; verifying from the database until it succeeds", "err", err)
	}
	defer srv.Stop()

	hs := httpServer(cfg.Server.Addr, srv.Handler())
	errc := make(chan error, 2)
	if mh := srv.MetricsHandler(); mh != nil {
		// A listener of its own, so that the metrics are never public
		// wherever the API is.
		ln, err := net.Listen("tcp", cfg.Metrics.Addr)
		if err != nil {
			return fmt.Errorf("metrics.addr: %w", err)
		}
		ms := httpServer("", mh)
		go func() {
			if err := ms.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
		defer ms.Close()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	go func() { errc <- hs.ListenAndServe() }()
	log.Info("authserver listening", "addr", cfg.Server.Addr, "strategy", cfg.Strategy, "database", cfg.Database.Driver,
		"cache", cfg.Cache.Enabled, "redis", cfg.Redis.Enabled())
	lw.Flush()
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// httpServer is the http.Server of every listening command: timeouts that
// bound slow clients, and a 16 KiB header limit. The headers of a request
// must arrive within 5 seconds; its body, where it has one, within 15
// (routes sets that deadline on the requests that read a body, so that the
// bodyless verifications do not pay for a timer); an answer must be
// written within 30; an idle keep-alive connection lives 60.
func httpServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// redisLog is go-redis's logger over ours.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
