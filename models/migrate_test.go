package models_test

import (
	"context"
	"sync"
	"testing"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestConcurrentMigrate: instances that start together on an empty
// database all migrate it without error, and the schema is whole.
func TestConcurrentMigrate(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			if driver == "sqlite" {
				t.Skip("one SQLite file is one process's")
			}
			driver, dsn := dbtest.DSN(t, driver)
			const instances = 4
			var wg sync.WaitGroup
			errs := make([]error, instances)
			for i := range instances {
				db, err := models.Open(driver, dsn, models.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if sqlDB, err := db.DB(); err == nil {
						_ = sqlDB.Close()
					}
				})
				wg.Go(func() { errs[i] = models.Migrate(context.Background(), db) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
			db, err := models.Open(driver, dsn, models.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if sqlDB, err := db.DB(); err == nil {
					_ = sqlDB.Close()
				}
			}()
			for _, m := range models.All() {
				if !db.Migrator().HasTable(m) {
					t.Errorf("no table for %T", m)
				}
			}
		})
	}
}
