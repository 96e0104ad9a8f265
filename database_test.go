package authserver_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
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
