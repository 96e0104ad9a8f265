// Command spa is a single-page app that uses the browser client
// (clients/js, served by the auth server at /api/v1/client.js): sign up,
// sign in, a protected call, and as many tabs as you like sharing one
// session. The API and the page share one origin, so the refresh token
// lives in the httpOnly cookie (cookie mode) and script never sees it.
//
//	go run ./examples/spa          # then open http://127.0.0.1:8010/ in several tabs
//
// It runs on a throwaway SQLite database with a 30-second access token, so
// that refreshes (one per browser, not one per tab) are easy to watch.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"flag"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
)

//go:embed static
var static embed.FS

// newHandler builds the app: the auth API under /api/v1, an app route
// protected by the server's middleware, and the page.
func newHandler(ctx context.Context, cfg *config.Config) (http.Handler, *authserver.Server, error) {
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, Secret: secret()})
	if err != nil {
		return nil, nil, err
	}
	r := gin.New()
	srv.Mount(r.Group("/api/v1"))
	r.GET("/app/hello", srv.Middleware(), func(c *gin.Context) {
		uid, _ := authserver.UserID(c)
		c.JSON(http.StatusOK, gin.H{"user_id": uid, "at": time.Now().UTC()})
	})
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, nil, err
	}
	r.NoRoute(gin.WrapH(http.FileServer(http.FS(page))))
	return r, srv, nil
}

// secret is a fresh signing key: the example's sessions end with it.
func secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8010", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "authserver-spa-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Defaults()
	cfg.Database.Driver = "sqlite"
	cfg.Database.DSN = filepath.Join(dir, "spa.db")
	cfg.Cookies.Secure = false // plain HTTP on localhost
	cfg.JWT.AccessTTL = 30 * time.Second
	gin.SetMode(gin.ReleaseMode)
	h, srv, err := newHandler(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(ctx); err != nil {
		log.Print(err)
	}
	defer srv.Stop()
	hs := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Shutdown(context.Background()) }()
	log.Printf("open http://%s/ in several tabs", *addr)
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}
