package main

// The example as an application lives with it, on SQLite, MySQL and
// PostgreSQL: its own users table is left alone (rows and schema), ours are
// prefixed, a GORM NamingStrategy of the application's handle does not
// reach ours nor ours its, the application's pool outlives the auth
// server, and its
// protected route answers 401, 200, 401 after logout-all and 503 with the
// database down.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// openHost opens a fresh, empty database the way an application does,
// with its own GORM settings.
func openHost(t *testing.T, driver string, gc *gorm.Config) *gorm.DB {
	t.Helper()
	_, dsn := dbtest.DSN(t, driver)
	if gc.Logger == nil {
		gc.Logger = logger.Discard
	}
	var (
		db  *gorm.DB
		err error
	)
	switch driver {
	case "sqlite":
		db, err = openDB(dsn, gc)
	case "mysql":
		// A MySQL pool shared with the auth server parses times, in UTC.
		mc, perr := mysqldriver.ParseDSN(dsn)
		if perr != nil {
			t.Fatal(perr)
		}
		mc.ParseTime, mc.Loc = true, time.UTC
		db, err = gorm.Open(mysql.New(mysql.Config{DSNConfig: mc}), gc)
	case "postgres":
		// The application's own pgx pool, as gorm opens it: times scan in
		// the process's zone, which the auth server must live with.
		db, err = gorm.Open(postgres.Open(dsn), gc)
	}
	if err != nil {
		t.Fatalf("open the application's database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

func testConfig() *config.Config {
	cfg := config.Defaults()
	cfg.JWT.Secret = "embedded-test-secret-embedded-test-secret"
	cfg.Password.BcryptCost = 4
	cfg.Log.Level = "error"
	return cfg
}

// running is the application with the auth server's background work
// started.
type running struct {
	t    *testing.T
	h    http.Handler
	srv  *authserver.Server
	stop func()
}

func start(t *testing.T, db *gorm.DB) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, srv, err := newApp(ctx, testConfig(), db)
	if err != nil {
		cancel()
		t.Fatalf("newApp: %v", err)
	}
	stopped := false
	a := &running{t: t, h: r, srv: srv}
	a.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := srv.Stop(); err != nil {
				t.Errorf("srv.Stop: %v", err)
			}
		}
	}
	if err := srv.Start(ctx); err != nil {
		a.stop()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(a.stop)
	return a
}

func (a *running) send(method, path, token, body string) (int, map[string]any) {
	a.t.Helper()
	hr := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, hr)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			a.t.Fatalf("%s %s: not JSON: %q", method, path, w.Body.String())
		}
	}
	return w.Code, out
}

// signIn registers (once) and logs in, and returns the access token.
func (a *running) signIn(email string, register bool) string {
	a.t.Helper()
	body := `{"email":"` + email + `","password":"correct horse battery"}`
	if register {
		if code, out := a.send("POST", "/api/v1/auth/register", "", body); code != http.StatusCreated {
			a.t.Fatalf("register: %d %v", code, out)
		}
	}
	code, out := a.send("POST", "/api/v1/auth/login", "", body)
	tok, _ := out["access_token"].(string)
	if code != http.StatusOK || tok == "" {
		a.t.Fatalf("login: %d %v", code, out)
	}
	return tok
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// hostState is what the application keeps in its users table: the rows
// and the schema.
type hostState struct {
	Rows    []User
	Columns []string
}

func snapshot(t *testing.T, db *gorm.DB, table string) hostState {
	t.Helper()
	var s hostState
	if err := db.Table(table).Order("id").Find(&s.Rows).Error; err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	cols, err := db.Migrator().ColumnTypes(table)
	if err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	for _, c := range cols {
		s.Columns = append(s.Columns, c.Name()+" "+strings.ToLower(c.DatabaseTypeName()))
	}
	return s
}

// tableOf is the table a GORM handle gives model, by its naming.
func tableOf(t *testing.T, db *gorm.DB, model any) string {
	t.Helper()
	st := &gorm.Statement{DB: db}
	if err := st.Parse(model); err != nil {
		t.Fatal(err)
	}
	return st.Schema.Table
}

func TestEmbedded(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			host := openHost(t, driver, &gorm.Config{})
			if err := host.AutoMigrate(&User{}); err != nil {
				t.Fatal(err)
			}
			seed := []User{{AuthUserID: 9001, Nickname: "alice"}, {AuthUserID: 9002, Nickname: "bob"}}
			if err := host.Create(&seed).Error; err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, host, "users")

			a := start(t, host)
			if after := snapshot(t, host, "users"); !reflect.DeepEqual(after, before) {
				t.Fatalf("the application's users table changed:\n%+v\nwant\n%+v", after, before)
			}
			for _, m := range models.All() {
				ours, plain := tableOf(t, a.srv.DB(), m), tableOf(t, host, m)
				if ours != "auth_"+plain {
					t.Errorf("our table %q, want auth_%s", ours, plain)
				}
				if !host.Migrator().HasTable(ours) {
					t.Errorf("no table %s", ours)
				}
				if plain != "users" && host.Migrator().HasTable(plain) {
					t.Errorf("an unprefixed table %s was created", plain)
				}
			}

			t.Run("protected route", func(t *testing.T) {
				code, out := a.send("GET", "/profile", "", "")
				if code != http.StatusUnauthorized || errCode(out) != "token_missing" {
					t.Fatalf("no token: %d %v, want 401 token_missing", code, out)
				}
				code, out = a.send("GET", "/profile", "not.a.jwt", "")
				if code != http.StatusUnauthorized || errCode(out) != "token_invalid" {
					t.Fatalf("a bad token: %d %v, want 401 token_invalid", code, out)
				}
				tok := a.signIn("ann@example.com", true)
				code, out = a.send("GET", "/profile", tok, "")
				if code != http.StatusOK || out["nickname"] != "new user" {
					t.Fatalf("with a token: %d %v, want 200 with the profile", code, out)
				}
				var accounts, profiles int64
				a.srv.DB().Model(&models.User{}).Count(&accounts)
				host.Model(&User{}).Count(&profiles)
				if accounts != 1 || profiles != 3 {
					t.Errorf("%d accounts and %d profiles, want 1 (auth_users) and 3 (users)", accounts, profiles)
				}
				var mine User
				if err := host.Take(&mine, "nickname = ?", "new user").Error; err != nil || out["user_id"] != float64(mine.AuthUserID) {
					t.Errorf("the profile's auth user id %d, the answer's %v (%v)", mine.AuthUserID, out["user_id"], err)
				}
				if got := snapshot(t, host, "users"); !reflect.DeepEqual(got.Rows[:2], before.Rows) || !reflect.DeepEqual(got.Columns, before.Columns) {
					t.Errorf("the application's own rows or schema changed: %+v", got)
				}

				// password_key, the default: logout-all ends every token at once.
				if code, out := a.send("POST", "/api/v1/auth/logout-all", tok, ""); code != http.StatusNoContent {
					t.Fatalf("logout-all: %d %v", code, out)
				}
				code, out = a.send("GET", "/profile", tok, "")
				if code != http.StatusUnauthorized {
					t.Fatalf("after logout-all: %d %v, want 401", code, out)
				}
				if code, _ := a.send("GET", "/profile", a.signIn("ann@example.com", false), ""); code != http.StatusOK {
					t.Fatalf("after a new login: %d, want 200", code)
				}
			})

			t.Run("the pool outlives the server", func(t *testing.T) {
				a.stop()
				if err := host.Exec("SELECT 1").Error; err != nil {
					t.Fatalf("the application's pool after srv.Close: %v", err)
				}
				var n int64
				if err := host.Model(&User{}).Count(&n).Error; err != nil || n != 3 {
					t.Fatalf("the application's users after srv.Close: %d, %v", n, err)
				}
			})

			t.Run("database down", func(t *testing.T) {
				b := start(t, host)
				tok := b.signIn("ann@example.com", false)
				if code, _ := b.send("GET", "/profile", tok, ""); code != http.StatusOK {
					t.Fatalf("before: %d", code)
				}
				sqlDB, err := host.DB()
				if err != nil {
					t.Fatal(err)
				}
				_ = sqlDB.Close()
				// The verification cache may let the token through until it
				// is no longer trusted (cache.max_staleness), and then the
				// application's own query fails; after that the middleware
				// answers 503 by itself. Never 401, never a 200.
				closed := time.Now()
				for {
					code, out := b.send("GET", "/profile", tok, "")
					if code == http.StatusServiceUnavailable && errCode(out) == "service_unavailable" {
						break
					}
					if code != http.StatusServiceUnavailable || out["error"] != "the profile cannot be read" || time.Since(closed) > testConfig().Cache.MaxStaleness+3*time.Second {
						t.Fatalf("%s after the database went down: %d %v, want the middleware's 503 (or the application's own, within cache.max_staleness)", time.Since(closed), code, out)
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		})
	}
}

// Order is another table of the application, created after the auth
// server: the application's naming still applies to it.
type Order struct {
	ID     uint `gorm:"primaryKey"`
	UserID uint `gorm:"not null"`
}

// TestEmbeddedNamingStrategy: the application's handle has a NamingStrategy
// of its own; it names the application's tables and never ours, and our
// prefix never names the application's tables.
func TestEmbeddedNamingStrategy(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			host := openHost(t, driver, &gorm.Config{NamingStrategy: schema.NamingStrategy{TablePrefix: "app_"}})
			a := start(t, host)
			if err := host.AutoMigrate(&Order{}); err != nil {
				t.Fatal(err)
			}
			m := host.Migrator()
			for table, want := range map[string]bool{
				"app_users": true, "app_orders": true, "auth_users": true, "auth_refresh_tokens": true,
				"users": false, "app_auth_users": false, "auth_app_users": false, "auth_orders": false, "refresh_tokens": false,
			} {
				if m.HasTable(table) != want {
					t.Errorf("table %s exists: %v, want %v", table, !want, want)
				}
			}
			tok := a.signIn("ann@example.com", true)
			if code, out := a.send("GET", "/profile", tok, ""); code != http.StatusOK {
				t.Fatalf("profile: %d %v", code, out)
			}
			var n int64
			if err := host.Table("app_users").Count(&n).Error; err != nil || n != 1 {
				t.Errorf("app_users has %d rows (%v), want 1", n, err)
			}
			if err := a.srv.DB().Table("auth_users").Count(&n).Error; err != nil || n != 1 {
				t.Errorf("auth_users has %d rows (%v), want 1", n, err)
			}
		})
	}
}

// TestDocsQuoteTheExample: docs/integrating.md ("Embedding in a Go
// application") quotes newApp word for word, so that the Go it shows
// compiles and is tested.
func TestDocsQuoteTheExample(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	quoted := 0
	for _, doc := range []string{"../../docs/integrating.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range strings.Split(string(b), "```go\n")[1:] {
			code, _, _ := strings.Cut(block, "```")
			if !strings.Contains(code, "func newApp(") {
				continue
			}
			quoted++
			if !strings.Contains(string(src), code) {
				t.Errorf("%s quotes a newApp that is not the one of examples/embedded/main.go", doc)
			}
		}
	}
	if quoted == 0 {
		t.Errorf("docs/integrating.md does not quote newApp of examples/embedded/main.go")
	}
}
