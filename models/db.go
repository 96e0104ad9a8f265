package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// ErrUnavailable marks an error of the database itself (down, timed out,
// deadlocked past retries): the request could not be decided and must fail
// closed with 503.
var ErrUnavailable = errors.New("database unavailable")

// Unavailable wraps a database error so that callers can tell it apart from
// a decision (not found, revoked, ...) with errors.Is(err, ErrUnavailable).
func Unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Drivers lists the accepted values of database.driver.
var Drivers = []string{"sqlite", "mysql"}

// Open connects to the database. SQLite runs with one connection, so that
// transactions are serialized in Go rather than failing with SQLITE_BUSY;
// MySQL DSNs are forced to parse times in UTC.
func Open(driver, dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	}
	switch driver {
	case "sqlite":
		path, dsn, err := sqliteDSN(dsn)
		if err != nil {
			return nil, err
		}
		if path != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
			// The file holds password hashes: readable by the server only.
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("create database file: %w", err)
			}
			f.Close()
		}
		db, err := gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		return db, nil
	case "mysql":
		mc, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse mysql dsn: %w", err)
		}
		mc.ParseTime = true
		mc.Loc = time.UTC
		if mc.Params == nil {
			mc.Params = map[string]string{}
		}
		mc.Params["time_zone"] = "'+00:00'"
		db, err := gorm.Open(mysql.New(mysql.Config{DSNConfig: mc}), cfg)
		if err != nil {
			return nil, fmt.Errorf("open mysql: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, fmt.Errorf("open mysql: %w", err)
		}
		sqlDB.SetMaxOpenConns(50)
		sqlDB.SetMaxIdleConns(25)
		sqlDB.SetConnMaxLifetime(5 * time.Minute)
		return db, nil
	default:
		return nil, fmt.Errorf("unknown database driver %q (valid: %s)", driver, strings.Join(Drivers, ", "))
	}
}

// sqliteDSN adds the pragmas the server relies on and returns the file path
// (empty for in-memory databases).
func sqliteDSN(dsn string) (path, full string, err error) {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", fmt.Errorf("parse sqlite dsn: %w", err)
	}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	if !strings.Contains(base, ":memory:") && !strings.Contains(q.Get("mode"), "memory") {
		q.Add("_pragma", "journal_mode(WAL)")
		path = strings.TrimPrefix(base, "file:")
	}
	return path, base + "?" + q.Encode(), nil
}

// Migrate creates or updates the schema.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(All()...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return Unavailable("ping", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return Unavailable("ping", err)
	}
	return nil
}

// Tx runs fn in a transaction and retries it when MySQL picks it as a
// deadlock victim or times out a lock wait: under concurrent logins of one
// user that is expected, and the retry is what the client would do anyway.
// Errors of fn are returned as they are; database errors of the transaction
// itself are wrapped with ErrUnavailable.
func Tx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = db.WithContext(ctx).Transaction(fn)
		if !retryable(err) {
			break
		}
		select {
		case <-ctx.Done():
			return Unavailable("transaction", ctx.Err())
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		}
	}
	if retryable(err) {
		return Unavailable("transaction", err)
	}
	return err
}

func retryable(err error) bool {
	var me *mysqldriver.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205 // deadlock, lock wait timeout
	}
	return false
}

// LockUser reads the user row for update. Every change of per-user state
// takes this lock first, so that two requests of one user cannot interleave
// their read-modify-write (SQLite ignores the clause; its single connection
// serializes transactions instead).
func LockUser(tx *gorm.DB, id uint64) (*User, error) {
	var u User
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&u, "id = ?", id).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, err
		}
		return nil, Unavailable("lock user", err)
	}
	return &u, nil
}
