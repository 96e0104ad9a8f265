package models

// LoginThrottle counts the consecutive failed password checks of one
// normalized email, for the brute-force throttle (package bruteforce), so
// that the count survives a restart and is shared by every instance on the
// database. The email itself is not stored: KeyHash is its keyed SHA-256,
// so the table lists no addresses, neither of accounts nor of the ones an
// attacker tried. Times are microseconds since the epoch, as integers, so
// that comparisons behave the same on SQLite and MySQL.
type LoginThrottle struct {
	KeyHash Binary `gorm:"primaryKey;type:varbinary(32)"`
	// Failures is the number of consecutive failures; a success deletes
	// the row.
	Failures int64 `gorm:"not null;default:0"`
	// LastFailureMicros is when the last failure was counted: a failure
	// long after it starts the count over, and old rows are pruned by it.
	LastFailureMicros int64 `gorm:"not null;default:0;index"`
	// LockedUntilMicros is when password checks for the email may resume;
	// 0 or past means not locked.
	LockedUntilMicros int64 `gorm:"not null;default:0"`
}
