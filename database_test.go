package authserver_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models/dbtest"
)

// TestStartupDatabaseErrors: a database.dsn written for another driver,
// or a database that does not answer at start-up, stops New with an error
// that names the settings to fix, and never prints the DSN's password.
func TestStartupDatabaseErrors(t *testing.T) {
	cases := []struct {
		name, driver, dsn string
		want              []string
	}{
		{"mysql dsn for postgres", "postgres", "root:s3cr3tpw@tcp(127.0.0.1:3306)/auth", []string{"database.dsn", "database.driver", "MySQL"}},
		{"postgres url for mysql", "mysql", "postgres://root:s3cr3tpw@127.0.0.1:5432/auth", []string{"database.dsn", "database.driver", "PostgreSQL"}},
		{"postgres url for sqlite", "sqlite", "postgres://root:s3cr3tpw@127.0.0.1:5432/auth", []string{"database.dsn", "database.driver", "PostgreSQL"}},
		{"file path for postgres", "postgres", "data/authserver.db", []string{"database.dsn", "database.driver postgres", "not a PostgreSQL DSN"}},
		{"postgres unreachable", "postgres", "postgres://root:s3cr3tpw@127.0.0.1:1/auth?sslmode=disable&connect_timeout=3", []string{"database.dsn", "database.driver postgres"}},
		{"postgres key=value unreachable", "postgres", "host=127.0.0.1 port=1 user=root password=s3cr3tpw dbname=auth connect_timeout=3", []string{"database.dsn", "database.driver postgres"}},
		{"mysql unreachable", "mysql", "root:s3cr3tpw@tcp(127.0.0.1:1)/auth?timeout=3s", []string{"database.dsn", "database.driver mysql"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Database.Driver, cfg.Database.DSN = tc.driver, tc.dsn
			srv, err := authserver.New(context.Background(), authserver.Options{
				Config: cfg, Secret: clusterSecret, Log: slog.New(slog.DiscardHandler),
			})
			if err == nil {
				_ = srv.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			t.Logf("%v", err)
			if strings.Contains(err.Error(), "s3cr3tpw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestEmbeddingOnSQLDB: an application hands the server its own
// connection pool (Options.SQLDB) of database.driver, leaving database.dsn
// at its default: accounts, logins and revocations work through it, and
// the pool outlives the server. The PostgreSQL pool is pgx's stdlib as an
// application opens it, scanning times in the local zone.
func TestEmbeddingOnSQLDB(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			_, dsn := dbtest.DSN(t, driver)
			pool := hostPool(t, driver, dsn)
			cfg := clusterConfig(t, "session_table", time.Second, "")
			cfg.Database.Driver = driver
			ctx := context.Background()
			srv, err := authserver.New(ctx, authserver.Options{
				Config: cfg, SQLDB: pool, Secret: clusterSecret, Log: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatalf("authserver.New on the application's pool: %v", err)
			}
			if err := srv.Start(ctx); err != nil {
				t.Fatalf("Start: %v", err)
			}
			n := &node{t: t, name: driver, cfg: cfg, srv: srv, handler: srv.Handler()}
			n.register("ann@example.com")
			laptop := n.login("ann@example.com", "laptop")
			phone := n.login("ann@example.com", "phone")
			if got := n.do(http.StatusOK, "GET", "/api/v1/me", laptop.token, nil).raw; !bytes.Contains(got, []byte("ann@example.com")) {
				t.Errorf("GET /me: %s", got)
			}
			n.do(http.StatusNoContent, "POST", "/api/v1/auth/logout", laptop.token, nil)
			if code := n.verify(laptop.token); code != http.StatusUnauthorized {
				t.Errorf("the logged-out token verifies with %d, want 401", code)
			}
			if code := n.verify(phone.token); code != http.StatusOK {
				t.Errorf("the other login verifies with %d, want 200", code)
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if err := pool.PingContext(ctx); err != nil {
				t.Fatalf("the application's pool was closed with the server: %v", err)
			}
		})
	}
}

// hostPool is an application's own *sql.DB on dsn.
func hostPool(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	var pool *sql.DB
	switch driver {
	case "sqlite":
		var err error
		if pool, err = sql.Open("sqlite", dsn+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"); err != nil {
			t.Fatal(err)
		}
		pool.SetMaxOpenConns(1)
	case "mysql":
		mc, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		mc.ParseTime, mc.Loc = true, time.UTC
		conn, err := mysqldriver.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		pool = sql.OpenDB(conn)
	case "postgres":
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		pool = stdlib.OpenDB(*pc)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}
