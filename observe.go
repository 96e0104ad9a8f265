package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/metrics"
)

// MetricsHandler serves the Prometheus metrics at GET /metrics, or is nil
// when metrics.addr is empty (metrics off). The serve command listens on
// metrics.addr with it; the API's Handler never serves it, so that the
// metrics are not public wherever the API is.
func (s *Server) MetricsHandler() http.Handler {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.Handler()
}

// Metrics is the server's instrumentation (nil when metrics are off).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// watch points the metrics at the counters of the cache, its feed, the
// rate limiter, the password hasher, the brute-force throttle, the reset
// queue and the connection pool.
func (s *Server) watch() error {
	if s.metrics == nil {
		return nil
	}
	src := metrics.Sources{
		Limiter: s.limits.Stats, Hasher: s.hasher.Stats, BruteForce: s.throttleStats.Stats,
		MailQueue: func() (int64, time.Duration, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := s.mail.Stats(ctx)
			return st.Queued + st.Sending, st.OldestAge, err
		},
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("metrics: the database pool: %w", err)
	}
	src.DB = sqlDB
	if s.cache != nil {
		src.Cache = s.cache.Stats
	}
	if s.feed != nil {
		src.Feed = s.feed.Health
	}
	return s.metrics.Watch(src)
}

// requestIDHandler adds the request id to every record logged with the
// context of a request that carries one (audit.Meta, which the HTTP layer
// sets for every request that may change state, and which the password
// reset queue carries on to its job), unless the record names it already.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := audit.MetaFrom(ctx).RequestID; id != "" {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = a.Key == "request_id"
			return !named
		})
		if !named {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
