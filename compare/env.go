package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// databases hands out a fresh, migrated database per strategy and removes
// it again.
type databases struct {
	driver, dsn string
	// tmpDir holds the SQLite files when no DSN was given.
	tmpDir string
	// admin is the connection to the MySQL server that creates and drops
	// the per-strategy databases; mc is the DSN they are derived from.
	admin *gorm.DB
	mc    *mysqldriver.Config
	// pgName is the database of a PostgreSQL --dsn: it prefixes the
	// per-strategy databases.
	pgName string
}

func newDatabases(ctx context.Context, driver, dsn string) (*databases, error) {
	d := &databases{driver: driver, dsn: dsn}
	switch driver {
	case "sqlite":
		if dsn == "" {
			dir, err := os.MkdirTemp("", "authserver-compare-")
			if err != nil {
				return nil, fmt.Errorf("create temporary directory: %w", err)
			}
			d.tmpDir = dir
		}
	case "mysql":
		mc, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse --dsn: %w", err)
		}
		if mc.DBName == "" {
			return nil, errors.New("--dsn must name a database, e.g. 'root@tcp(127.0.0.1:3306)/test': its name prefixes the per-strategy databases")
		}
		admin, err := models.Open("mysql", dsn, models.Options{})
		if err != nil {
			return nil, err
		}
		if err := models.Ping(ctx, admin); err != nil {
			closeDB(admin)
			return nil, fmt.Errorf("connect to MySQL: %w", err)
		}
		d.admin, d.mc = admin, mc
	case "postgres":
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse --dsn: %w", err)
		}
		if pc.Database == "" || !validPGName(pc.Database) {
			return nil, errors.New("--dsn must name a database of letters, digits and underscores, e.g. 'postgres://root@127.0.0.1:5432/test': its name prefixes the per-strategy databases")
		}
		admin, err := models.Open("postgres", dsn, models.Options{})
		if err != nil {
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		d.admin, d.pgName = admin, pc.Database
	}
	return d, nil
}

// open returns a fresh migrated database for the strategy and the function
// that closes and removes it.
func (d *databases) open(ctx context.Context, name string) (*gorm.DB, func(), error) {
	dsn, remove, err := d.create(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	db, err := models.Open(d.driver, dsn, models.Options{})
	if err != nil {
		remove()
		return nil, nil, err
	}
	cleanup := func() {
		closeDB(db)
		remove()
	}
	if err := models.Migrate(ctx, db); err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, cleanup, nil
}

// create makes the empty database: a new SQLite file or a new MySQL or
// PostgreSQL database. A leftover of an interrupted run under the same name is
// removed first: the _cmp_ names belong to compare.
func (d *databases) create(ctx context.Context, name string) (string, func(), error) {
	switch d.driver {
	case "sqlite":
		var dsn, path string
		switch {
		case d.tmpDir != "":
			path = filepath.Join(d.tmpDir, name+".db")
			dsn = path
		case strings.Contains(d.dsn, ":memory:") || strings.Contains(d.dsn, "mode=memory"):
			// Each Open of a private in-memory database starts empty.
			return d.dsn, func() {}, nil
		default:
			dsn, path = sqliteFile(d.dsn, name)
		}
		removeSQLite(path)
		return dsn, func() { removeSQLite(path) }, nil
	case "postgres":
		db := d.pgName + "_cmp_" + name
		if len(db) > 63 {
			return "", nil, fmt.Errorf("database name %s is longer than PostgreSQL's 63 characters: use a shorter database name in --dsn", db)
		}
		ident := `"` + db + `"`
		// FORCE ends the connections of an interrupted run (PostgreSQL 13+).
		if err := d.admin.WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)").Error; err != nil {
			return "", nil, fmt.Errorf("drop leftover database %s: %w", db, err)
		}
		if err := d.admin.WithContext(ctx).Exec("CREATE DATABASE " + ident).Error; err != nil {
			return "", nil, fmt.Errorf("create database %s: %w", db, err)
		}
		drop := func() { _ = d.admin.Exec("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)").Error }
		return models.PostgresDSN(d.dsn, db), drop, nil
	default:
		db := d.mc.DBName + "_cmp_" + name
		if len(db) > 64 {
			return "", nil, fmt.Errorf("database name %s is longer than MySQL's 64 characters: use a shorter database name in --dsn", db)
		}
		ident := "`" + strings.ReplaceAll(db, "`", "``") + "`"
		if err := d.admin.WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + ident).Error; err != nil {
			return "", nil, fmt.Errorf("drop leftover database %s: %w", db, err)
		}
		if err := d.admin.WithContext(ctx).Exec("CREATE DATABASE " + ident + " CHARACTER SET utf8mb4").Error; err != nil {
			return "", nil, fmt.Errorf("create database %s: %w", db, err)
		}
		mc := d.mc.Clone()
		mc.DBName = db
		drop := func() { _ = d.admin.Exec("DROP DATABASE IF EXISTS " + ident).Error }
		return mc.FormatDSN(), drop, nil
	}
}

func (d *databases) close() {
	if d.tmpDir != "" {
		_ = os.RemoveAll(d.tmpDir)
	}
	if d.admin != nil {
		closeDB(d.admin)
	}
}

// sqliteFile derives the strategy's file from the --dsn path: foo.db gives
// foo_cmp_<name>.db, keeping a file: prefix and query parameters.
func sqliteFile(dsn, name string) (full, path string) {
	base, query, hasQuery := strings.Cut(dsn, "?")
	prefix := ""
	if rest, ok := strings.CutPrefix(base, "file:"); ok {
		prefix, base = "file:", rest
	}
	ext := filepath.Ext(base)
	path = strings.TrimSuffix(base, ext) + "_cmp_" + name + ext
	full = prefix + path
	if hasQuery {
		full += "?" + query
	}
	return full, path
}

// removeSQLite removes a database file with its WAL files.
func removeSQLite(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// validPGName reports whether a database name needs no quoting beyond
// double quotes: letters, digits and underscores.
func validPGName(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
