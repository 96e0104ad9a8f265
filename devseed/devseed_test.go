package devseed

import "testing"

func TestLocal(t *testing.T) {
	for _, c := range []struct {
		driver, dsn string
		want        bool
	}{
		{"sqlite", "/var/lib/auth.db", true},
		{"mysql", "root@tcp(127.0.0.1:3306)/auth", true},
		{"mysql", "root@tcp(localhost:3306)/auth", true},
		{"mysql", "root@tcp([::1]:3306)/auth", true},
		{"mysql", "root@unix(/run/mysqld/mysqld.sock)/auth", true},
		{"mysql", "root@tcp(db.internal:3306)/auth", false},
		{"mysql", "root@tcp(10.0.0.5:3306)/auth", false},
		{"mysql", "not a dsn(", false},
		{"postgres", "postgres://root@127.0.0.1:5432/test", true},
		{"postgres", "postgresql://root@db.example.com/test", false},
		{"postgres", "host=localhost user=root dbname=test", true},
		{"postgres", "host=/var/run/postgresql dbname=test", true},
		{"postgres", "user=root dbname=test", true},
		{"postgres", "host=10.1.2.3 dbname=test", false},
		{"oracle", "whatever", false},
	} {
		t.Run(c.driver+" "+c.dsn, func(t *testing.T) {
			if got := Local(c.driver, c.dsn); got != c.want {
				t.Fatalf("Local = %v, want %v", got, c.want)
			}
		})
	}
}
