package models_test

import (
	"testing"
	"time"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestTimesReadBackUTC: a time written in UTC, as the server writes them
// all, reads back as the same instant in UTC on every driver (pgx scans
// timestamptz in the process's local zone unless told otherwise), and a
// comparison in SQL against UTC bounds sees it where it is.
func TestTimesReadBackUTC(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			at := time.Date(2026, 3, 1, 0, 30, 15, 123000000, time.UTC)
			s := models.Session{ID: "s1", UserID: 1, CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}
			if err := db.Create(&s).Error; err != nil {
				t.Fatal(err)
			}
			var got models.Session
			if err := db.Take(&got, "id = ?", "s1").Error; err != nil {
				t.Fatal(err)
			}
			for name, v := range map[string]time.Time{"created_at": got.CreatedAt, "expires_at": got.ExpiresAt} {
				if v.Location() != time.UTC {
					t.Errorf("%s reads back in %v, want UTC", name, v.Location())
				}
			}
			if !got.CreatedAt.Equal(at) {
				t.Errorf("created_at %v, want the instant %v", got.CreatedAt, at.UTC())
			}
			var n int64
			bound := time.Date(2026, 3, 1, 0, 31, 0, 0, time.UTC)
			if err := db.Model(&models.Session{}).Where("expires_at > ? AND created_at < ?", bound, bound).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("rows between the UTC bounds: %d, want 1", n)
			}
		})
	}
}
