// Command embedded is a Gin application that embeds authserver: it keeps
// its own users table and routes, shares its database with the auth
// server (whose tables get the prefix auth_), mounts the auth API under
// /api/v1 and protects its own GET /profile with the server's middleware.
//
//	go run ./examples/embedded
//	curl localhost:8000/api/v1/auth/register --json '{"email":"ann@example.com","password":"correct horse"}'
//	curl localhost:8000/api/v1/auth/login --json '{"email":"ann@example.com","password":"correct horse"}'
//	curl localhost:8000/profile -H "Authorization: Bearer $ACCESS_TOKEN"
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
)

// User is the application's own user, in its own table called users: not
// the auth server's (which is auth_users here), and of another shape.
type User struct {
	ID         uint   `gorm:"primaryKey"`
	AuthUserID uint64 `gorm:"uniqueIndex;not null"` // the auth server's user id
	Nickname   string `gorm:"size:50;not null"`
}

// newApp builds the application on its database db: its own table and
// routes, and the auth server with the settings of cfg.
func newApp(ctx context.Context, cfg *config.Config, db *gorm.DB) (*gin.Engine, *authserver.Server, error) {
	if err := db.AutoMigrate(&User{}); err != nil {
		return nil, nil, err
	}
	cfg.Database.TablePrefix = "auth_" // its tables: auth_users, auth_sessions, ...
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, DB: db})
	if err != nil {
		return nil, nil, err
	}
	r := gin.New()
	srv.Mount(r.Group("/api/v1")) // register, login, refresh, logout, ...
	r.GET("/profile", srv.Middleware(), func(c *gin.Context) {
		uid, _ := authserver.UserID(c) // verified: revoked tokens never get here
		u := User{AuthUserID: uid, Nickname: "new user"}
		// The request's context, not c: gin reuses c once the handler returns.
		if err := db.WithContext(c.Request.Context()).Where(User{AuthUserID: uid}).FirstOrCreate(&u).Error; err != nil {
			c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "the profile cannot be read"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"user_id": uid, "nickname": u.Nickname})
	})
	return r, srv, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, err := openDB("app.db", &gorm.Config{})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := config.Load("") // config.yaml and AUTH_* variables, as for the server
	if err != nil {
		log.Fatal(err)
	}
	r, srv, err := newApp(ctx, cfg, db)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil { // the cache feed, prune, last-seen writer
		log.Print(err) // verifies from the database until the outbox reads
	}
	defer srv.Stop()
	hs := &http.Server{Addr: "127.0.0.1:8000", Handler: r}
	go func() { <-ctx.Done(); _ = hs.Shutdown(context.Background()) }()
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}

// openDB opens the application's SQLite database the way the auth server
// needs a shared SQLite pool: one connection (SQLite serializes writers
// anyway; one connection turns "database is locked" into waiting) and a
// busy timeout.
func openDB(path string, gc *gorm.Config) (*gorm.DB, error) {
	db, err := gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"), gc)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	return db, nil
}
