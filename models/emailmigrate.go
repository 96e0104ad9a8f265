package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// MigrationReport says what Migrate did to existing rows that an operator
// should know about.
type MigrationReport struct {
	// EmailsCanonicalized counts the accounts whose stored email was
	// rewritten to its canonical form (NormalizeEmail).
	EmailsCanonicalized int
	// EmailConflicts are the ids of accounts whose email was left as it
	// was because its canonical form is already another account's: the
	// account that holds the canonical spelling keeps it, and these can
	// no longer be found by email (login, reset, the admin CLI), only by
	// id. An operator decides, by hand (docs/security.md).
	EmailConflicts []uint64
	// EmailsInvalid are the ids of accounts whose stored email has no
	// canonical form (an internationalized domain that IDNA refuses): left
	// as they are, they cannot be found by email either.
	EmailsInvalid []uint64
}

// MigrateWithReport is Migrate, telling what it did to existing rows.
func MigrateWithReport(ctx context.Context, db *gorm.DB) (MigrationReport, error) {
	var rep MigrationReport
	// The schema, the email column's collation included (under the
	// migration lock, see migrateSchema).
	if err := migrateSchema(ctx, db); err != nil {
		return rep, err
	}
	return canonicalizeEmails(ctx, db)
}

// emailCollation is the collation of users.email on MySQL and MariaDB:
// byte-exact. Their default collations (utf8mb4_general_ci on MariaDB,
// utf8mb4_0900_ai_ci on MySQL 8) treat "ceo@compány.com" and
// "CEO@company.com" as "ceo@company.com", which let a look-alike address
// find, reset and spend the brute-force budget of another account.
const emailCollation = "utf8mb4_bin"

// binaryEmailColumn makes the comparisons of users.email byte-exact on
// MySQL: new tables are created with the server's default collation by
// AutoMigrate (a collation in the GORM tag would not be portable), and
// databases created by earlier releases have it too, so the column is
// altered whenever its collation is not binary. SQLite compares with
// BINARY unless told otherwise, and nothing here tells it otherwise.
func binaryEmailColumn(ctx context.Context, db *gorm.DB) error {
	if Driver(db) != "mysql" {
		return nil
	}
	table, err := tableName(db, &User{})
	if err != nil {
		return err
	}
	var collation *string
	err = db.WithContext(ctx).Raw(
		"SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'email'",
		table).Scan(&collation).Error
	if err != nil {
		return fmt.Errorf("migrate: read the collation of %s.email: %w", table, err)
	}
	if collation != nil && *collation == emailCollation {
		return nil
	}
	// Rows that differ under a case- and accent-insensitive collation
	// differ under a binary one: the unique index holds through the change.
	q := fmt.Sprintf("ALTER TABLE `%s` MODIFY `email` varchar(254) CHARACTER SET utf8mb4 COLLATE %s NOT NULL",
		strings.ReplaceAll(table, "`", "``"), emailCollation)
	if err := db.WithContext(ctx).Exec(q).Error; err != nil {
		return fmt.Errorf("migrate: make %s.email byte-exact: %w", table, err)
	}
	return nil
}

func tableName(db *gorm.DB, model any) (string, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return "", fmt.Errorf("migrate: %w", err)
	}
	return stmt.Schema.Table, nil
}

// canonicalizeEmails rewrites every stored email that is not in its
// canonical form (earlier releases only lower-cased). Each row is
// rewritten on its own, with a conditional update: a server of the
// previous release still running during an upgrade changes nothing here
// but its own rows. A rewrite that would collide with another account's
// address is not done (the unique index refuses it): see
// MigrationReport.EmailConflicts.
func canonicalizeEmails(ctx context.Context, db *gorm.DB) (MigrationReport, error) {
	var rep MigrationReport
	const batch = 1000
	var last uint64
	for {
		var rows []User
		err := db.WithContext(ctx).Select("id", "email").Where("id > ?", last).Order("id").Limit(batch).Find(&rows).Error
		if err != nil {
			return rep, fmt.Errorf("migrate: read emails: %w", err)
		}
		for _, u := range rows {
			canon, err := NormalizeEmail(u.Email)
			switch {
			case err != nil:
				rep.EmailsInvalid = append(rep.EmailsInvalid, u.ID)
				continue
			case canon == u.Email:
				continue
			}
			res := db.WithContext(ctx).Model(&User{}).Where("id = ? AND email = ?", u.ID, u.Email).Update("email", canon)
			switch {
			case errors.Is(res.Error, gorm.ErrDuplicatedKey):
				rep.EmailConflicts = append(rep.EmailConflicts, u.ID)
			case res.Error != nil:
				return rep, fmt.Errorf("migrate: canonicalize the email of user %d: %w", u.ID, res.Error)
			case res.RowsAffected == 1:
				rep.EmailsCanonicalized++
			}
		}
		if len(rows) < batch {
			return rep, nil
		}
		last = rows[len(rows)-1].ID
	}
}
