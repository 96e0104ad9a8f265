package main

// authserver dev seed through the real binary: the seeded accounts are
// accepted by a running server under every strategy, and the safety guard
// refuses a database that has users.

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

// seeded is one line of the --tokens file.
type seeded struct {
	uid                    uint64
	email, access, refresh string
}

func readSeeded(t *testing.T, path string) []seeded {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []seeded
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("tokens line %q: want 4 fields", line)
		}
		uid, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("tokens line %q: %v", line, err)
		}
		out = append(out, seeded{uid: uid, email: f[1], access: f[2], refresh: f[3]})
	}
	return out
}

func TestDevSeed(t *testing.T) {
	const users = 23 // batches of 5: several transactions, the last one short
	for _, driver := range dbtest.Drivers() {
		for _, strat := range strategy.Names() {
			t.Run(driver+"/"+strat, func(t *testing.T) {
				logins := 2
				if strat == "single_device" {
					logins = 1
				}
				d := newDeployment(t, driver, map[string]string{"AUTH_STRATEGY": strat})
				// The server creates the database; the seed runs
				// beside it, and a new instance serves the result.
				if err := d.start(t).Stop(); err != nil {
					t.Fatal(err)
				}
				tokens := filepath.Join(t.TempDir(), "tokens.tsv")
				d.must(t, "", "dev", "seed", "--users", strconv.Itoa(users), "--logins", strconv.Itoa(logins),
					"--batch", "5", "--writers", "2", "--password", testPassword, "--tokens", tokens)
				got := readSeeded(t, tokens)
				if len(got) != users*logins {
					t.Fatalf("%d token lines, want %d", len(got), users*logins)
				}
				seen := map[uint64]int{}
				for _, s := range got {
					seen[s.uid]++
				}
				if len(seen) != users {
					t.Fatalf("tokens of %d users, want %d", len(seen), users)
				}

				srv := d.start(t)
				// Every seeded login is accepted as the strategy
				// stores it.
				for _, s := range got {
					if st := verifyStatus(t, srv, s.access); st != http.StatusOK {
						t.Fatalf("seeded access token of user %d (%s): verify %d", s.uid, s.email, st)
					}
				}
				// A seeded refresh token rotates, and its successor
				// verifies.
				r := got[len(got)-1]
				next := tokensFrom(t, srv.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r.refresh}))
				if st := verifyStatus(t, srv, next.Access); st != http.StatusOK {
					t.Fatalf("access token from a seeded refresh token: verify %d", st)
				}
				// The shared password logs in; a wrong one does not.
				tok := srv.Login(t, got[0].email, testPassword)
				if st := verifyStatus(t, srv, tok.Access); st != http.StatusOK {
					t.Fatalf("login of a seeded account: verify %d", st)
				}
				if st := login(t, srv, got[0].email, "wrong password!").Status; st != http.StatusUnauthorized {
					t.Fatalf("seeded account with a wrong password: %d", st)
				}
				// A registration after the seed gets a fresh id.
				id := srv.Register(t, "after-seed@example.com", testPassword)
				if n, _ := strconv.ParseUint(id, 10, 64); n <= uint64(users) {
					t.Fatalf("registered after the seed with id %s, want > %d", id, users)
				}

				// The guard: a database with users is refused, unless
				// --force, and nothing is added.
				d.mustFail(t, "already has users", "dev", "seed", "--users", "3")
				d.must(t, "", "dev", "seed", "--users", "3", "--force", "--domain", "more.test", "--tokens", tokens)
				more := readSeeded(t, tokens)
				if len(more) != 3 || !strings.HasSuffix(more[0].email, "@more.test") {
					t.Fatalf("forced seed wrote %v", more)
				}
				for _, s := range more {
					if st := verifyStatus(t, srv, s.access); st != http.StatusOK {
						t.Fatalf("force-seeded user %d: verify %d", s.uid, st)
					}
				}
			})
		}
	}
}

// TestDevSeedRefusesRemote: a database on another machine is refused
// without --force, before anything is written.
func TestDevSeedRefusesRemote(t *testing.T) {
	d := newDeployment(t, "sqlite", map[string]string{
		"AUTH_DATABASE_DRIVER": "mysql", "AUTH_DATABASE_DSN": "root@tcp(192.0.2.1:3306)/prod?timeout=1s",
	})
	d.mustFail(t, "not on this machine", "dev", "seed", "--users", "1")
}
