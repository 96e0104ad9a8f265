package bruteforce

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/revocable/authserver/models"
)

// DBStore keeps the counts in the login_throttles table
// (models.LoginThrottle).
type DBStore struct {
	db *gorm.DB
}

// NewDBStore returns a store on db, whose schema must include
// models.LoginThrottle.
func NewDBStore(db *gorm.DB) *DBStore { return &DBStore{db: db} }

func (s *DBStore) LockedUntil(ctx context.Context, key Key) (time.Time, error) {
	var row models.LoginThrottle
	err := s.db.WithContext(ctx).Select("locked_until_micros").Take(&row, "key_hash = ?", key[:]).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable("read lock", err)
	}
	return fromMicros(row.LockedUntilMicros), nil
}

// Fail counts the failure with one upsert (INSERT ... ON CONFLICT DO
// UPDATE on SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE on MySQL), never a read before
// an insert: of concurrent failures none is lost. The upsert holds the
// row's lock until the transaction ends, so the count read back is this
// failure's, and the lock it sets only ever moves later.
func (s *DBStore) Fail(ctx context.Context, key Key, now time.Time, p Policy) (time.Time, error) {
	nowUS := now.UnixMicro()
	var until int64
	err := models.Tx(ctx, s.db, func(tx *gorm.DB) error {
		row := models.LoginThrottle{KeyHash: key[:], Failures: 1, LastFailureMicros: nowUS}
		// On MySQL the assignments run in order and later ones see the
		// earlier ones' results: failures must be computed before
		// last_failure_micros changes. SQLite evaluates all against the
		// old row.
		// PostgreSQL wants the old row's columns qualified (bare ones are
		// ambiguous with EXCLUDED's); the others accept the qualified form.
		stmt := &gorm.Statement{DB: tx}
		if err := stmt.Parse(&models.LoginThrottle{}); err != nil {
			return unavailable("count failure", err)
		}
		old := func(col string) clause.Column { return clause.Column{Table: stmt.Table, Name: col} }
		err := tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "key_hash"}},
			DoUpdates: clause.Set{
				{Column: clause.Column{Name: "failures"}, Value: gorm.Expr(
					"CASE WHEN ? < ? THEN 1 ELSE ? + 1 END",
					old("last_failure_micros"), nowUS-p.resetAfter().Microseconds(), old("failures"))},
				{Column: clause.Column{Name: "last_failure_micros"}, Value: nowUS},
			},
		}).Create(&row).Error
		if err != nil {
			return unavailable("count failure", err)
		}
		var cur models.LoginThrottle
		if err := tx.Take(&cur, "key_hash = ?", key[:]).Error; err != nil {
			return unavailable("read failures", err)
		}
		until = cur.LockedUntilMicros
		if d := p.Delay(cur.Failures); d > 0 && nowUS+d.Microseconds() > until {
			until = nowUS + d.Microseconds()
			err := tx.Model(&models.LoginThrottle{}).Where("key_hash = ?", key[:]).
				Update("locked_until_micros", until).Error
			if err != nil {
				return unavailable("lock", err)
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = unavailable("count failure", err)
		}
		return time.Time{}, err
	}
	return fromMicros(until), nil
}

func (s *DBStore) Reset(ctx context.Context, key Key) error {
	if err := s.db.WithContext(ctx).Delete(&models.LoginThrottle{}, "key_hash = ?", key[:]).Error; err != nil {
		return unavailable("reset", err)
	}
	return nil
}

// Prune deletes the rows that no longer matter at now: not locked, and
// whose last failure is older than the policy's reset time (the next
// failure would start over anyway). Unknown emails never succeed, so
// without it their rows would stay. Call it from the periodic prune job.
func (s *DBStore) Prune(ctx context.Context, now time.Time, p Policy) (int64, error) {
	nowUS := now.UnixMicro()
	res := s.db.WithContext(ctx).
		Where("last_failure_micros < ? AND locked_until_micros < ?", nowUS-p.resetAfter().Microseconds(), nowUS).
		Delete(&models.LoginThrottle{})
	if res.Error != nil {
		return 0, unavailable("prune", res.Error)
	}
	return res.RowsAffected, nil
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}
