package strategy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

// TestPruneBatches: the prune deletes every dead refresh, session and
// reset row and keeps every live one, in many small DELETEs (primary-key
// ranges of at most MaxBatch keys), never in one.
func TestPruneBatches(t *testing.T) {
	const (
		refreshRows = 1000
		sessionRows = 300
		resetRows   = 200
		maxBatch    = 64
	)
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db := dbtest.Open(t, driver)
			now := time.Now().UTC().Truncate(time.Second)
			u := &models.User{Email: "prune@example.com", PasswordHash: "x", KeySalt: strategy.NewKeySalt(), CreatedAt: now, UpdatedAt: now}
			if err := db.Create(u).Error; err != nil {
				t.Fatal(err)
			}
			sc := config.Defaults().ServiceConfig(benchSecret)
			sc.Now = func() time.Time { return now }
			svc, err := strategy.New(db, "session_table", sc)
			if err != nil {
				t.Fatal(err)
			}
			// Row i is dead when i%3 != 0: expired (i%3 == 1) or
			// revoked/used (i%3 == 2), so dead and live rows interleave
			// in every range.
			past, future := now.Add(-time.Hour), now.Add(time.Hour)
			expiry := func(i int) time.Time {
				if i%3 == 1 {
					return past
				}
				return future
			}
			ended := func(i int) *time.Time {
				if i%3 == 2 {
					return &past
				}
				return nil
			}
			var (
				refresh []models.RefreshToken
				reset   []models.ResetToken
				session []models.Session
			)
			for i := range refreshRows {
				refresh = append(refresh, models.RefreshToken{
					TokenHash: strategy.HashSecret(fmt.Sprint("r", i)), UserID: u.ID, FamilyID: fmt.Sprint("f", i),
					IssuedAt: past, ExpiresAt: expiry(i), RevokedAt: ended(i),
				})
			}
			for i := range sessionRows {
				session = append(session, models.Session{
					ID: fmt.Sprintf("s%05d", i), UserID: u.ID, CreatedAt: past, LastSeenAt: past,
					ExpiresAt: expiry(i), RevokedAt: ended(i),
				})
			}
			for i := range resetRows {
				reset = append(reset, models.ResetToken{
					TokenHash: strategy.HashSecret(fmt.Sprint("p", i)), UserID: u.ID, CreatedAt: past,
					ExpiresAt: expiry(i), UsedAt: ended(i),
				})
			}
			for _, rows := range []any{refresh, session, reset} {
				if err := db.CreateInBatches(rows, 200).Error; err != nil {
					t.Fatal(err)
				}
			}
			var liveRefresh []uint64
			for i, r := range refresh {
				if i%3 == 0 {
					liveRefresh = append(liveRefresh, r.ID)
				}
			}

			st, err := svc.PruneWith(context.Background(), strategy.PruneOptions{MaxBatch: maxBatch})
			if err != nil {
				t.Fatal(err)
			}
			var left []uint64
			if err := db.Model(&models.RefreshToken{}).Order("id").Pluck("id", &left).Error; err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(left, liveRefresh) {
				t.Fatalf("refresh rows left %d, want the %d live ones", len(left), len(liveRefresh))
			}
			for _, c := range []struct {
				model any
				total int
			}{{&models.Session{}, sessionRows}, {&models.ResetToken{}, resetRows}} {
				var n int64
				if err := db.Model(c.model).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				if want := int64((c.total + 2) / 3); n != want {
					t.Fatalf("%T: %d rows left, want the %d live ones", c.model, n, want)
				}
			}
			dead := int64(refreshRows - len(liveRefresh) + sessionRows - (sessionRows+2)/3 + resetRows - (resetRows+2)/3)
			if st.Rows != dead {
				t.Fatalf("prune reported %d rows, %d were dead", st.Rows, dead)
			}
			// Each table's keys in ranges of at most maxBatch.
			minBatches := (refreshRows+maxBatch-1)/maxBatch + (sessionRows+maxBatch-1)/maxBatch + (resetRows+maxBatch-1)/maxBatch
			if st.Batches < minBatches {
				t.Fatalf("prune ran %d batches, want at least %d of at most %d keys", st.Batches, minBatches, maxBatch)
			}
			if st.Longest <= 0 || st.Longest > st.Took {
				t.Fatalf("longest batch %s of %s", st.Longest, st.Took)
			}
			again, err := svc.PruneWith(context.Background(), strategy.PruneOptions{MaxBatch: maxBatch})
			if err != nil || again.Rows != 0 {
				t.Fatalf("second prune: %d rows, %v", again.Rows, err)
			}
		})
	}
}
