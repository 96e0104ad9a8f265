package authserver_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
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

// TestPostgresOutageMidLoad: the PostgreSQL server goes away under load,
// as in a restart (every connection to the instance's database is
// terminated and new ones are refused), and comes back. Meanwhile every
// login answers 200 or 503 and every verification 200 (from the cache,
// within max_staleness) or 503, never 500; /readyz says 503. Afterwards
// logins and verifications succeed again without restarting the instance.
func TestPostgresOutageMidLoad(t *testing.T) {
	dsn := dbtest.CreatePostgresDatabase(t)
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := models.Open("postgres", os.Getenv(dbtest.EnvPostgres), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Exec("ALTER DATABASE " + pc.Database + " ALLOW_CONNECTIONS true").Error
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	cfg := clusterConfig(t, "session_table", time.Second, "")
	n := startNode(t, "A", database{driver: "postgres", dsn: dsn}, cfg)
	const who = "ann@example.com"
	n.register(who)
	tok := n.login(who, "laptop").token

	var (
		mu      sync.Mutex
		counts  = map[string]map[int]int{"login": {}, "verify": {}}
		slowest time.Duration
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	timed := func(op string, f func() int) {
		t0 := time.Now()
		code := f()
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		counts[op][code]++
		slowest = max(slowest, d)
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			timed("verify", func() int { return n.verify(tok) })
			timed("login", func() int {
				return n.send("POST", "/api/v1/auth/login", "", map[string]string{"email": who, "password": password, "device_name": "load"}).code
			})
			time.Sleep(5 * time.Millisecond)
		}
	})
	time.Sleep(200 * time.Millisecond)

	for _, q := range []string{
		"ALTER DATABASE " + pc.Database + " ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + pc.Database + "'",
	} {
		if err := admin.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Down until the load has met the outage on both operations (the
	// verification once its cache is no longer trusted).
	eventually(t, 20*time.Second, "the load answered 503 to logins and verifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts["login"][http.StatusServiceUnavailable] > 0 && counts["verify"][http.StatusServiceUnavailable] > 0
	})
	if c := n.send("GET", "/readyz", "", nil).code; c != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d with the database down, want 503", c)
	}
	if err := admin.Exec("ALTER DATABASE " + pc.Database + " ALLOW_CONNECTIONS true").Error; err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "logins succeed again after the database is back", func() bool {
		return n.send("POST", "/api/v1/auth/login", "", map[string]string{"email": who, "password": password, "device_name": "back"}).code == http.StatusOK
	})
	eventually(t, 15*time.Second, "the token verifies again after the database is back", func() bool {
		return n.verify(tok) == http.StatusOK
	})
	close(stop)
	wg.Wait()
	t.Logf("answers during the run: %v; the slowest took %v", counts, slowest)
	for op, byCode := range counts {
		for code := range byCode {
			if code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Errorf("%s answered %d (%d times); want only 200 or 503", op, code, byCode[code])
			}
		}
	}
	if slowest > models.TxTimeout {
		t.Errorf("a request took %v during the outage; failing closed should not wait longer than a transaction may live (%v)", slowest, models.TxTimeout)
	}
}
