package models

import (
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// The models' column types are written for MySQL in their tags
// (varbinary, mediumtext), which SQLite accepts as they are and PostgreSQL
// does not know. The types below give PostgreSQL its own spelling and leave
// the tag in force everywhere else, so that the schema of an existing
// MySQL or SQLite database does not change.

// Binary is a short binary column (a hash, a salt): varbinary on MySQL,
// bytea on PostgreSQL.
type Binary []byte

// GormDBDataType implements gorm's migrator.GormDataTypeInterface.
func (Binary) GormDBDataType(db *gorm.DB, _ *schema.Field) string {
	if db.Dialector.Name() == "postgres" {
		return "bytea"
	}
	return ""
}

// GormDBDataType implements gorm's migrator.GormDataTypeInterface:
// mediumtext on MySQL, text on PostgreSQL.
func (DeviceMap) GormDBDataType(db *gorm.DB, _ *schema.Field) string {
	if db.Dialector.Name() == "postgres" {
		return "text"
	}
	return ""
}
