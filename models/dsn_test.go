package models_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/revocable/authserver/models"
)

// TestPostgresDSN: the database of a PostgreSQL DSN is replaced, in both
// spellings, and the rest of it (user, password, host, options) is kept.
func TestPostgresDSN(t *testing.T) {
	cases := []struct{ name, dsn string }{
		{"url", "postgres://ann:pw@db.example:5433/test?sslmode=disable&application_name=x"},
		{"postgresql url", "postgresql://ann:pw@db.example:5433/test?sslmode=disable"},
		{"url without database", "postgres://ann:pw@db.example:5433?sslmode=disable"},
		{"key=value", "host=db.example port=5433 user=ann password=pw dbname=test sslmode=disable"},
		{"key=value without dbname", "host=db.example port=5433 user=ann password=pw sslmode=disable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := models.PostgresDSN(tc.dsn, "other_db")
			c, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("PostgresDSN gave %q: %v", got, err)
			}
			if c.Database != "other_db" || c.User != "ann" || c.Password != "pw" || c.Host != "db.example" || c.Port != 5433 {
				t.Errorf("PostgresDSN gave %q: database %q user %q password %q host %q port %d",
					got, c.Database, c.User, c.Password, c.Host, c.Port)
			}
		})
	}
}
