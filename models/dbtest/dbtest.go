// Package dbtest gives tests a fresh, migrated database: SQLite always,
// MySQL when AUTH_TEST_MYSQL_DSN is set and PostgreSQL when
// AUTH_TEST_POSTGRES_DSN is set (CI sets both). It is a package of
// its own because the routes, strategy and compare tests all need the same
// fixture.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// EnvMySQL names the variable that holds the MySQL DSN for tests, e.g.
// root@tcp(127.0.0.1:3306)/test. Each test gets its own database on that
// server, dropped when the test ends.
const EnvMySQL = "AUTH_TEST_MYSQL_DSN"

// EnvPostgres names the variable that holds the PostgreSQL DSN for tests,
// libpq-style or a URL, e.g. postgres://root@127.0.0.1:5432/test. Each
// test gets its own database on that server, dropped when the test ends.
const EnvPostgres = "AUTH_TEST_POSTGRES_DSN"

// Drivers lists the databases to run against: sqlite, mysql when
// AUTH_TEST_MYSQL_DSN is set, postgres when AUTH_TEST_POSTGRES_DSN is set.
func Drivers() []string {
	out := []string{"sqlite"}
	if os.Getenv(EnvMySQL) != "" {
		out = append(out, "mysql")
	}
	if os.Getenv(EnvPostgres) != "" {
		out = append(out, "postgres")
	}
	return out
}

// Open returns a fresh migrated database of the given driver. For mysql
// without AUTH_TEST_MYSQL_DSN (postgres without AUTH_TEST_POSTGRES_DSN) it
// skips the test, saying so.
func Open(tb testing.TB, driver string) *gorm.DB {
	tb.Helper()
	driver, dsn := DSN(tb, driver)
	db, err := models.Open(driver, dsn, models.Options{})
	if err != nil {
		tb.Fatalf("open %s: %v", driver, err)
	}
	tb.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := models.Migrate(context.Background(), db); err != nil {
		tb.Fatalf("migrate %s: %v", driver, err)
	}
	return db
}

// DSN creates an empty database of the given driver and returns its DSN;
// it is dropped (MySQL, PostgreSQL) or removed (SQLite) when the test
// ends.
func DSN(tb testing.TB, driver string) (string, string) {
	tb.Helper()
	switch driver {
	case "sqlite":
		return driver, filepath.Join(tb.TempDir(), "auth.db")
	case "mysql":
		base := os.Getenv(EnvMySQL)
		if base == "" {
			tb.Skipf("MySQL tests skipped: set %s (e.g. root@tcp(127.0.0.1:3306)/test)", EnvMySQL)
		}
		return driver, createMySQL(tb, base)
	case "postgres":
		base := os.Getenv(EnvPostgres)
		if base == "" {
			tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)", EnvPostgres)
		}
		return driver, createPostgres(tb, base)
	default:
		tb.Fatalf("unknown driver %q", driver)
		return "", ""
	}
}

func createMySQL(tb testing.TB, base string) string {
	tb.Helper()
	cfg, err := mysqldriver.ParseDSN(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvMySQL, err)
	}
	name := uniqueName()
	admin, err := models.Open("mysql", base, models.Options{})
	if err != nil {
		tb.Fatalf("connect to MySQL: %v", err)
	}
	if err := admin.Exec(fmt.Sprintf("CREATE DATABASE `%s` CHARACTER SET utf8mb4", name)).Error; err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		_ = admin.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", name)).Error
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// createPostgres gives the test a schema of its own in the database of
// base, and a DSN whose search_path names it: a fresh, empty namespace,
// dropped when the test ends. A schema rather than a database because
// CREATE and DROP DATABASE cost seconds each on a loaded machine (they
// copy and sync a template), against milliseconds for a schema, and the
// suite makes hundreds; the server finds its tables through search_path
// as it would in a deployment that uses one. CreatePostgresDatabase is
// for the tests that need a database of their own.
func createPostgres(tb testing.TB, base string) string {
	tb.Helper()
	name := uniqueName()
	admin := openPostgresAdmin(tb, base)
	if err := admin.Exec("CREATE SCHEMA " + name).Error; err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA IF EXISTS " + name + " CASCADE").Error; err != nil {
			tb.Logf("drop test schema %s: %v", name, err)
		}
	})
	return withSearchPath(base, name)
}

// CreatePostgresDatabase creates an empty database on the server of
// AUTH_TEST_POSTGRES_DSN (skipping the test when it is not set) and
// returns its DSN; it is dropped when the test ends.
func CreatePostgresDatabase(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)", EnvPostgres)
	}
	name := uniqueName()
	admin := openPostgresAdmin(tb, base)
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		// FORCE ends the connections a test left open (PostgreSQL 13+).
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return models.PostgresDSN(base, name)
}

func openPostgresAdmin(tb testing.TB, base string) *gorm.DB {
	tb.Helper()
	if _, err := pgx.ParseConfig(base); err != nil {
		tb.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	admin, err := models.Open("postgres", base, models.Options{})
	if err != nil {
		tb.Fatalf("connect to PostgreSQL: %v", err)
	}
	// Registered first, so it runs after the drop.
	tb.Cleanup(func() {
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return admin
}

func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "authtest_" + hex.EncodeToString(b)
}

// withSearchPath is the DSN dsn (a URL or key=value) with search_path set
// to schema: pgx sends unknown keys as run-time parameters.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
