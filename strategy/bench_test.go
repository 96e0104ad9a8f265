package strategy_test

// Benchmarks of the operations whose cost differs between strategies:
// issuing tokens (Service.Login), refreshing them (Service.Refresh) and
// verifying one (Service.Verify), called directly, without HTTP, on SQLite
// and, when AUTH_TEST_MYSQL_DSN / AUTH_TEST_POSTGRES_DSN are set, on MySQL
// and PostgreSQL. `authserver compare` measures the same through the HTTP
// API. Run with:
//
//	go test -run XXX -bench . -benchtime 200x ./strategy/

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

var benchSecret = []byte("bench-secret-bench-secret-bench-secret-0123456789")

// benchDevice is a typical browser login.
var benchDevice = strategy.DeviceInfo{
	Name:      "laptop",
	UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	IP:        "192.0.2.10",
}

// benchResetEvery bounds the logins a user accumulates during BenchmarkIssue:
// every so many issues, with the timer stopped, the user's logins are
// cleared, so that multi_device's device map and session_table's rows do
// not grow with b.N and every strategy is measured for a user with 0 to
// benchResetEvery-1 other live logins.
const benchResetEvery = 8

// benchMatrix runs fn for every test database and every strategy.
func benchMatrix(b *testing.B, fn func(b *testing.B, driver, name string)) {
	for _, driver := range dbtest.Drivers() {
		for _, name := range strategy.Names() {
			b.Run(driver+"/"+name, func(b *testing.B) { fn(b, driver, name) })
		}
	}
}

// benchSetup returns the Service of the strategy with the default
// configuration and a fixed clock (so no verification ever updates
// last_seen_at), on a fresh database with one user.
func benchSetup(b *testing.B, driver, name string) (*strategy.Service, *gorm.DB, *models.User) {
	b.Helper()
	db := dbtest.Open(b, driver)
	now := time.Now().UTC().Truncate(time.Microsecond)
	hash, err := bcrypt.GenerateFromPassword([]byte("bench password"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	u := &models.User{
		Email: "bench@example.com", PasswordHash: string(hash),
		KeySalt: strategy.NewKeySalt(), CreatedAt: now, UpdatedAt: now,
	}
	if err := db.Create(u).Error; err != nil {
		b.Fatalf("create user: %v", err)
	}
	sc := config.Defaults().ServiceConfig(benchSecret)
	sc.Now = func() time.Time { return now }
	svc, err := strategy.New(db, name, sc)
	if err != nil {
		b.Fatalf("strategy.New: %v", err)
	}
	return svc, db, u
}

// benchClearLogins removes every login of the user: its sessions, its
// refresh tokens and the per-user state of the device strategies.
func benchClearLogins(b *testing.B, db *gorm.DB, uid uint64) {
	b.Helper()
	for _, m := range []any{&models.Session{}, &models.RefreshToken{}} {
		if err := db.Where("user_id = ?", uid).Delete(m).Error; err != nil {
			b.Fatalf("clear logins: %v", err)
		}
	}
	err := db.Model(&models.User{}).Where("id = ?", uid).
		Updates(map[string]any{"devices": nil, "state": ""}).Error
	if err != nil {
		b.Fatalf("clear logins: %v", err)
	}
}

// BenchmarkIssue measures a login: the login transaction, the strategy's
// bookkeeping, the refresh token and signing the access token. The
// password check (bcrypt) happens before Service.Login and is not part of
// it.
func BenchmarkIssue(b *testing.B) {
	benchMatrix(b, func(b *testing.B, driver, name string) {
		svc, db, u := benchSetup(b, driver, name)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := svc.Login(ctx, u.ID, u.PasswordHash, benchDevice); err != nil {
				b.Fatalf("Login: %v", err)
			}
			if i++; i%benchResetEvery == 0 {
				b.StopTimer()
				benchClearLogins(b, db, u.ID)
				b.StartTimer()
			}
		}
	})
}

// BenchmarkVerify measures verifying a valid access token: what every
// authenticated request pays.
func BenchmarkVerify(b *testing.B) {
	benchMatrix(b, func(b *testing.B, driver, name string) {
		svc, _, u := benchSetup(b, driver, name)
		ctx := context.Background()
		tok, err := svc.Login(ctx, u.ID, u.PasswordHash, benchDevice)
		if err != nil {
			b.Fatalf("Login: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Verify(ctx, tok.AccessToken); err != nil {
				b.Fatalf("Verify: %v", err)
			}
		}
	})
}

// BenchmarkRefresh measures a refresh: the rotation transaction (the old
// link marked used, the successor inserted, the strategy's bookkeeping)
// and signing the new access token. Each iteration refreshes the token
// the previous one returned, as a client does.
func BenchmarkRefresh(b *testing.B) {
	benchMatrix(b, func(b *testing.B, driver, name string) {
		svc, _, u := benchSetup(b, driver, name)
		ctx := context.Background()
		tok, err := svc.Login(ctx, u.ID, u.PasswordHash, benchDevice)
		if err != nil {
			b.Fatalf("Login: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if tok, err = svc.Refresh(ctx, tok.RefreshToken); err != nil {
				b.Fatalf("Refresh: %v", err)
			}
		}
	})
}
