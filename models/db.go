package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
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
var Drivers = []string{"sqlite", "mysql", "postgres"}

// Options are what opening the database takes besides the DSN.
type Options struct {
	// TablePrefix goes in front of every table name of ours.
	TablePrefix string
}

func gormConfig(o Options) *gorm.Config {
	return &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		NamingStrategy: schema.NamingStrategy{TablePrefix: o.TablePrefix},
	}
}

// Open connects to the database. SQLite runs with one connection, so that
// transactions are serialized in Go rather than failing with SQLITE_BUSY;
// MySQL DSNs are forced to parse times in UTC, and PostgreSQL connections
// scan timestamptz in UTC (pgx's default is the process's local zone).
func Open(driver, dsn string, o Options) (*gorm.DB, error) {
	if err := CheckDSN(driver, dsn); err != nil {
		return nil, err
	}
	cfg := gormConfig(o)
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
	case "postgres":
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse postgres dsn: %w", err)
		}
		// The pool is ours, so the codec is registered on every new
		// connection; times written are instants either way.
		sqlDB := stdlib.OpenDB(*pc, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
			UTCTimes(c.TypeMap())
			return nil
		}))
		db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), cfg)
		if err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB.SetMaxOpenConns(50)
		sqlDB.SetMaxIdleConns(25)
		sqlDB.SetConnMaxLifetime(5 * time.Minute)
		return db, nil
	default:
		return nil, fmt.Errorf("unknown database driver %q (valid: %s)", driver, strings.Join(Drivers, ", "))
	}
}

// CheckDSN rejects a DSN written for another driver than the one named,
// before anything tries to connect with it: a MySQL DSN handed to pgx, or
// a PostgreSQL URL to SQLite (which would create a file of that name),
// fail late or oddly, saying nothing about what is wrong. The parsers'
// messages carry no password (pgx redacts it; MySQL's name the address).
func CheckDSN(driver, dsn string) error {
	pgURL := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	myDSN := strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix(")
	switch {
	case pgURL && driver != "postgres":
		return fmt.Errorf("a PostgreSQL URL given for driver %s: use driver postgres", driver)
	case myDSN && driver != "mysql":
		return fmt.Errorf("a MySQL DSN given for driver %s: use driver mysql", driver)
	}
	switch driver {
	case "mysql":
		if _, err := mysqldriver.ParseDSN(dsn); err != nil {
			return fmt.Errorf("not a MySQL DSN (user:pass@tcp(host:3306)/dbname): %w", err)
		}
	case "postgres":
		if _, err := pgx.ParseConfig(dsn); err != nil {
			return fmt.Errorf("not a PostgreSQL DSN (postgres://user@host:5432/dbname or host=... dbname=...): %w", err)
		}
	}
	return nil
}

// OpenConn opens our own GORM handle on a connection pool the caller owns
// (an application that embeds the server). Our handle has its own naming
// (the table prefix) and leaves the caller's GORM settings alone; the pool
// is used as it is and never closed or reconfigured by us.
//
// MySQL pools must parse times (parseTime=true) in UTC (loc=UTC); SQLite
// pools should run with one connection and a busy timeout, as Open does.
// PostgreSQL pools (pgx's stdlib) should register UTCTimes on each
// connection: without it times read back in the process's local zone,
// the same instants but not the same values to ==.
func OpenConn(driver string, conn *sql.DB, o Options) (*gorm.DB, error) {
	if conn == nil {
		return nil, errors.New("no connection pool given")
	}
	var dial gorm.Dialector
	switch driver {
	case "sqlite":
		dial = &sqlite.Dialector{Conn: conn}
	case "mysql":
		dial = mysql.New(mysql.Config{Conn: conn})
	case "postgres":
		dial = postgres.New(postgres.Config{Conn: conn})
	default:
		return nil, fmt.Errorf("unknown database driver %q (valid: %s)", driver, strings.Join(Drivers, ", "))
	}
	db, err := gorm.Open(dial, gormConfig(o))
	if err != nil {
		return nil, fmt.Errorf("open %s on the given pool: %w", driver, err)
	}
	return db, nil
}

// Driver names the driver of an open database: sqlite, mysql or
// postgres.
func Driver(db *gorm.DB) string {
	switch db.Dialector.Name() {
	case "mysql":
		return "mysql"
	case "postgres":
		return "postgres"
	}
	return "sqlite"
}

// UTCTimes makes a pgx type map scan timestamptz (and timestamp) values
// in UTC, as the other drivers do. Register it in an AfterConnect hook.
func UTCTimes(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
	m.RegisterType(&pgtype.Type{Name: "timestamp", OID: pgtype.TimestampOID, Codec: &pgtype.TimestampCodec{ScanLocation: time.UTC}})
}

// PostgresDSN is a PostgreSQL dsn (a URL or libpq's key=value form) with
// its database replaced by name: the test fixtures and compare create
// databases of their own on the server of a given DSN.
func PostgresDSN(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	// In the key=value form a later key wins; the name is ours, of
	// letters, digits and underscores, so it needs no quoting.
	return dsn + " dbname=" + name
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

// Migrate creates or updates the schema, and brings existing rows to it
// (see MigrateWithReport for what it tells about them).
func Migrate(ctx context.Context, db *gorm.DB) error {
	_, err := MigrateWithReport(ctx, db)
	return err
}

// migrateSchema creates or updates the tables and indexes.
//
// On PostgreSQL, whose DDL is transactional, it runs in one transaction
// under an advisory lock (on MySQL under a named lock): instances starting
// together on an empty database migrate one after the other (the later
// ones find the tables) instead of racing to create the same table, and
// nobody sees half a schema. Nothing that may fail and go on (the email
// rewrite, whose duplicates are expected) runs in that transaction: on
// PostgreSQL a failed statement aborts it (25P02).
func migrateSchema(ctx context.Context, db *gorm.DB) error {
	db = db.WithContext(ctx)
	var err error
	switch Driver(db) {
	case "postgres":
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLockKey).Error; err != nil {
				return err
			}
			return tx.AutoMigrate(All()...)
		})
	case "mysql":
		err = db.Connection(func(c *gorm.DB) error { return migrateLocked(ctx, c) })
	default:
		err = db.AutoMigrate(All()...)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrateLocked migrates MySQL (the tables, then the email column's
// collation) under a named lock of the database's own, held by conn's one
// connection: MySQL's DDL is not transactional, so this is
// what keeps instances starting together from racing to create a table.
func migrateLocked(ctx context.Context, conn *gorm.DB) error {
	// conn is not a new session: each statement needs one of its own.
	c := func() *gorm.DB { return conn.Session(&gorm.Session{}) }
	var got sql.NullInt64
	if err := c().Raw("SELECT GET_LOCK(CONCAT('authserver_migrate:', DATABASE()), 60)").Scan(&got).Error; err != nil {
		return err
	}
	if !got.Valid || got.Int64 != 1 {
		return errors.New("the migration lock was not granted within 60s")
	}
	defer c().Exec("SELECT RELEASE_LOCK(CONCAT('authserver_migrate:', DATABASE()))")
	if err := c().AutoMigrate(All()...); err != nil {
		return err
	}
	// An ALTER of the email column while another instance reads the
	// schema makes that one see the index missing: under the lock too.
	return binaryEmailColumn(ctx, c())
}

// migrateLockKey is the PostgreSQL advisory lock Migrate holds: any
// constant of our own ("authsrv" in ASCII).
const migrateLockKey = 0x61757468737276

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

// Tx runs fn in a transaction and retries it when the database picks it
// as a deadlock victim, times out a lock wait or fails its serialization
// (see retryable): under concurrent logins of one user that is expected,
// and the retry is what the client would do anyway. Each retry runs fn
// again in a new transaction, from the start: on PostgreSQL a failed
// statement aborts the whole transaction (25P02), so nothing may go on in
// the old one.
// Errors of fn are returned as they are; database errors of the transaction
// itself are wrapped with ErrUnavailable.
//
// Every attempt runs under a deadline of TxTimeout, so that no transaction
// stays open longer than that: the outbox reader relies on it (a row whose
// id was handed out more than that ago has either committed or never will).
func Tx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = attempt(ctx, db, fn)
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

// TxTimeout bounds each attempt of a transaction run by Tx.
const TxTimeout = 10 * time.Second

// attempt runs one try of the transaction. An error of the transaction
// itself (begin, commit) rather than of fn is wrapped with ErrUnavailable.
func attempt(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	ctx, cancel := context.WithTimeout(ctx, TxTimeout)
	defer cancel()
	var fnErr error
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && err != fnErr && !retryable(err) {
		return Unavailable("transaction", err)
	}
	return err
}

// retryable reports whether err is a database's "try the transaction
// again", told by its code, never by its message: MySQL's deadlock (1213)
// and lock wait timeout (1205), PostgreSQL's serialization failure
// (40001), deadlock (40P01) and lock timeout (55P03), SQLite's busy (5)
// and locked (6), with their extended codes.
func retryable(err error) bool {
	var me *mysqldriver.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "55P03"
	}
	var se *sqlitedriver.Error
	if errors.As(err, &se) {
		primary := se.Code() & 0xff
		return primary == 5 || primary == 6
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

// Invalidate records, inside tx, that the revocation state of the locked
// user u changed: it bumps u's revision and writes the outbox row. Call it
// as the last write of the transaction: the row's id is handed out at the
// insert, and the shorter the time from there to the commit, the sooner
// readers see an unbroken sequence of ids.
func Invalidate(tx *gorm.DB, u *User) error {
	u.Revision++
	if err := tx.Model(u).Update("revision", u.Revision).Error; err != nil {
		return Unavailable("bump revision", err)
	}
	return InvalidateID(tx, u.ID, u.Revision)
}

// InvalidateID writes the outbox row of user uid at revision rev, for
// changes that have no user row to bump (a registration, a deletion).
func InvalidateID(tx *gorm.DB, uid uint64, rev int64) error {
	row := Invalidation{UserID: uid, Revision: rev, CreatedAt: time.Now().UTC()}
	if err := tx.Create(&row).Error; err != nil {
		return Unavailable("record invalidation", err)
	}
	return nil
}

type backgroundKey struct{}

// Background marks ctx as the server's background work (the outbox feed,
// the prune, the last-seen writer), as opposed to a request's, so that
// whoever counts a request's statements can tell them apart.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx was marked by Background.
func IsBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}
