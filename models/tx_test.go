package models_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestTxRetriesDeadlockVictim: two transactions lock two users' rows in
// opposite orders; the database picks one as the deadlock victim (MySQL
// 1213, PostgreSQL 40P01), and Tx runs that one again, whole, in a new
// transaction: both succeed, with one retry between them. On PostgreSQL
// the victim's transaction is aborted (25P02), so going on in it would
// fail: only a fresh transaction can succeed.
func TestTxRetriesDeadlockVictim(t *testing.T) {
	for _, driver := range []string{"mysql", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			now := time.Now().UTC()
			users := []models.User{
				{Email: "a@example.com", PasswordHash: "x", KeySalt: []byte("s"), CreatedAt: now, UpdatedAt: now},
				{Email: "b@example.com", PasswordHash: "x", KeySalt: []byte("s"), CreatedAt: now, UpdatedAt: now},
			}
			if err := db.Create(&users).Error; err != nil {
				t.Fatal(err)
			}
			var attempts atomic.Int32
			var both sync.WaitGroup
			both.Add(2)
			run := func(first, second uint64) error {
				return models.Tx(context.Background(), db, func(tx *gorm.DB) error {
					n := attempts.Add(1)
					if _, err := models.LockUser(tx, first); err != nil {
						return err
					}
					if n <= 2 {
						// First attempts: both hold their first lock
						// before either asks for the second.
						both.Done()
						both.Wait()
					}
					u, err := models.LockUser(tx, second)
					if err != nil {
						return err
					}
					return models.Invalidate(tx, u)
				})
			}
			errs := make(chan error, 2)
			go func() { errs <- run(users[0].ID, users[1].ID) }()
			go func() { errs <- run(users[1].ID, users[0].ID) }()
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("Tx: %v", err)
				}
			}
			if n := attempts.Load(); n != 3 {
				t.Errorf("%d attempts, want 3 (two, and the victim's retry)", n)
			}
		})
	}
}
