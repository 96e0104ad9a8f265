// Package devseed loads many accounts, each with live logins, into a
// development database, fast: for load tests such as a million accounts
// under a Zipf load (docs/scaling.md). It writes rows with multi-row
// INSERTs, a batch of users and their logins per transaction, instead of
// one registration and one login transaction per account, and it hashes
// the one password once: every seeded account has the same password hash.
// That is what makes it a development tool, and why Check refuses a
// database that is not plainly a development one.
package devseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// Errors of the safety guard.
var (
	// ErrNotEmpty: the database already has accounts.
	ErrNotEmpty = errors.New("the database already has users")
	// ErrNotLocal: the database is not on this machine.
	ErrNotLocal = errors.New("the database is not on this machine")
)

// MaxUsers bounds one run: ten million accounts.
const MaxUsers = 10_000_000

// Options say what to seed.
type Options struct {
	// Users is how many accounts; Logins how many live logins each.
	Users, Logins int
	// Domain is the emails' domain: accounts are seed-<n>@<Domain>, n
	// counting from 1 in the order of their ids.
	Domain string
	// Batch is how many accounts one transaction inserts (default 1000).
	Batch int
	// Writers is how many transactions run at once (default 1). SQLite
	// has one writer anyway; MySQL and PostgreSQL load faster with 2-4.
	Writers int
	// Tokens, when set, receives one line per login, tab-separated:
	// user id, email, access token, refresh token. It is a file of live
	// credentials: a development artefact.
	Tokens io.Writer
	// Progress, when set, receives a line every 100,000 accounts.
	Progress io.Writer
}

// Result is what a run inserted.
type Result struct {
	Users, Logins   int
	FirstID, LastID uint64
	Took            time.Duration
}

// Logins is what seeding needs of the token service: the strategy's rows
// of a login made in memory (strategy.Service).
type Logins interface {
	SeedLogin(u *models.User, d strategy.DeviceInfo, now time.Time) (*strategy.SeededLogin, error)
	MaxSeedLogins() int
}

// The safety guard: a development database is local and empty. Seeded
// accounts all share one password, which must not mix with real ones.

// CheckLocal refuses a database that is not on this machine: anything but
// a SQLite file, a server on a loopback address or a Unix socket. Call it
// before opening the database, so that nothing touches a remote one.
func CheckLocal(driver, dsn string) error {
	if !Local(driver, dsn) {
		return fmt.Errorf("%w (database.dsn): seeding writes accounts that all share one password; pass --force if this really is a development database", ErrNotLocal)
	}
	return nil
}

// CheckEmpty refuses a database that already has accounts.
func CheckEmpty(ctx context.Context, db *gorm.DB) error {
	var ids []uint64
	if err := db.WithContext(ctx).Model(&models.User{}).Limit(1).Pluck("id", &ids).Error; err != nil {
		return models.Unavailable("count users", err)
	}
	if len(ids) > 0 {
		return fmt.Errorf("%w: seeding writes accounts that all share one password; pass --force to add them anyway", ErrNotEmpty)
	}
	return nil
}

// Local reports whether the database of driver and dsn is on this
// machine. An unknown driver or a DSN it cannot read is not.
func Local(driver, dsn string) bool {
	switch driver {
	case "sqlite":
		return true
	case "mysql":
		cfg, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			return false
		}
		if cfg.Net == "unix" {
			return true
		}
		return loopback(cfg.Addr)
	case "postgres":
		return postgresLocal(dsn)
	default:
		return false
	}
}

// postgresLocal reads the host of a URL or key=value DSN; libpq's default
// (no host) is the local Unix socket.
func postgresLocal(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return false
		}
		h := u.Hostname()
		return h == "" || loopback(h)
	}
	host := ""
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && k == "host" {
			host = strings.Trim(v, "'")
		}
	}
	return host == "" || strings.HasPrefix(host, "/") || loopback(host)
}

func loopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// batch is one transaction's worth of rows.
type batch struct {
	users    []models.User
	refresh  []models.RefreshToken
	sessions []models.Session
	lines    []string
}

// Run inserts o.Users accounts with passwordHash and o.Logins logins
// each, the logins made by ls as the running strategy makes them. Call
// Check first. The rows of a batch are built while the previous batch is
// written.
func Run(ctx context.Context, db *gorm.DB, ls Logins, passwordHash string, o Options) (Result, error) {
	start := time.Now()
	if o.Users < 1 || o.Users > MaxUsers {
		return Result{}, fmt.Errorf("--users must be between 1 and %d", MaxUsers)
	}
	if max := ls.MaxSeedLogins(); o.Logins < 1 || o.Logins > max {
		return Result{}, fmt.Errorf("--logins must be between 1 and %d under this strategy (more would sign out earlier logins)", max)
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Domain == "" {
		o.Domain = "seed.test"
	}
	var last []uint64
	if err := db.WithContext(ctx).Model(&models.User{}).Order("id DESC").Limit(1).Pluck("id", &last).Error; err != nil {
		return Result{}, models.Unavailable("read the highest user id", err)
	}
	first := uint64(1)
	if len(last) > 0 {
		first = last[0] + 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 2)
	built := make(chan error, 1)
	go func() {
		defer close(batches)
		built <- build(ctx, ls, passwordHash, first, o, batches)
	}()
	res := Result{FirstID: first}
	var mu sync.Mutex // guards res and o.Tokens
	g, gctx := errgroup.WithContext(ctx)
	for range max(o.Writers, 1) {
		g.Go(func() error {
			for b := range batches {
				if err := write(gctx, db, b); err != nil {
					cancel()
					return err
				}
				mu.Lock()
				err := res.add(b, o, start)
				mu.Unlock()
				if err != nil {
					cancel()
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	for range batches { // unblock build after a failure
	}
	if err != nil {
		return res, err
	}
	if err := <-built; err != nil {
		return res, err
	}
	if res.Users != o.Users {
		return res, fmt.Errorf("seeded %d users of %d", res.Users, o.Users)
	}
	if err := fixSequence(ctx, db); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// add counts a written batch and writes its tokens.
func (r *Result) add(b batch, o Options, start time.Time) error {
	for _, l := range b.lines {
		if _, err := io.WriteString(o.Tokens, l); err != nil {
			return fmt.Errorf("write tokens: %w", err)
		}
	}
	before := r.Users
	r.Users += len(b.users)
	r.Logins += len(b.refresh)
	r.LastID = max(r.LastID, b.users[len(b.users)-1].ID)
	if o.Progress != nil && r.Users/100_000 != before/100_000 {
		fmt.Fprintf(o.Progress, "seeded %d users in %s\n", r.Users, time.Since(start).Round(time.Second))
	}
	return nil
}

// build makes the rows, o.Batch accounts at a time.
func build(ctx context.Context, ls Logins, passwordHash string, first uint64, o Options, out chan<- batch) error {
	now := time.Now().UTC()
	d := strategy.DeviceInfo{Name: "seed", UserAgent: "authserver dev seed", IP: "127.0.0.1"}
	for done := 0; done < o.Users; {
		n := min(o.Batch, o.Users-done)
		b := batch{users: make([]models.User, n), refresh: make([]models.RefreshToken, 0, n*o.Logins)}
		for i := range b.users {
			id := first + uint64(done+i)
			u := &b.users[i]
			*u = models.User{
				ID: id, Email: fmt.Sprintf("seed-%d@%s", done+i+1, o.Domain), PasswordHash: passwordHash,
				KeySalt: strategy.NewKeySalt(), CreatedAt: now, UpdatedAt: now, Revision: 1,
			}
			for range o.Logins {
				l, err := ls.SeedLogin(u, d, now)
				if err != nil {
					return fmt.Errorf("seed login of user %d: %w", id, err)
				}
				b.refresh = append(b.refresh, l.Refresh)
				if l.Session != nil {
					b.sessions = append(b.sessions, *l.Session)
				}
				if o.Tokens != nil {
					b.lines = append(b.lines, fmt.Sprintf("%d\t%s\t%s\t%s\n", id, u.Email, l.Tokens.AccessToken, l.Tokens.RefreshToken))
				}
			}
		}
		done += n
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// insertRows bounds the rows of one INSERT statement, under every
// driver's limit of bound parameters (SQLite's 32766, with 12 columns).
const insertRows = 1000

// write inserts one batch in one transaction, with an outbox row for its
// highest id, so that running instances learn that these users exist
// (cache.Cache.SeeUser) instead of refusing their ids as unknown.
func write(ctx context.Context, db *gorm.DB, b batch) error {
	return models.Tx(ctx, db, func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(b.users, insertRows).Error; err != nil {
			return models.Unavailable("insert users", err)
		}
		if err := tx.CreateInBatches(b.refresh, insertRows).Error; err != nil {
			return models.Unavailable("insert refresh tokens", err)
		}
		if len(b.sessions) > 0 {
			if err := tx.CreateInBatches(b.sessions, insertRows).Error; err != nil {
				return models.Unavailable("insert sessions", err)
			}
		}
		last := b.users[len(b.users)-1]
		return models.InvalidateID(tx, last.ID, last.Revision)
	})
}

// fixSequence moves PostgreSQL's id sequence past the ids seeding chose
// (MySQL's AUTO_INCREMENT and SQLite's rowid follow explicit ids on their
// own), so that the next registration does not collide.
func fixSequence(ctx context.Context, db *gorm.DB) error {
	if db.Dialector.Name() != "postgres" {
		return nil
	}
	err := db.WithContext(ctx).Exec("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))").Error
	if err != nil {
		return models.Unavailable("advance the users id sequence", err)
	}
	return nil
}
