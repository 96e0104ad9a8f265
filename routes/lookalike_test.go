package routes_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/models"
)

// The CEO's address and spellings of it. caseVariants are the same
// address (case, Unicode normalization form): one account, one
// brute-force budget. lookAlikes are other addresses that an accent- or
// case-insensitive collation (MariaDB's utf8mb4_general_ci, MySQL 8's
// utf8mb4_0900_ai_ci) would take for it: they must never reach the
// CEO's account. See docs/security.md, "Email addresses".
const ceo = "ceo@company.com"

var (
	caseVariants = []string{"CEO@Company.com", " Ceo@COMPANY.COM\t", "ceo@company.com"}
	lookAlikes   = []string{"ceo@compány.com", "cëo@company.com", "ce\u0301o@company.com", "CÉO@company.com", "ceo@companÿ.com"}
)

// TestLookAlikeEmailReset: a reset asked for a look-alike of the CEO's
// address makes no token for the CEO's account and mails nothing to the
// look-alike; a reset asked with another case of the address mails the
// token to the stored address, never to the spelling typed. On
// MariaDB with the default collation the look-alike got the CEO's token.
func TestLookAlikeEmailReset(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		id := e.register(ceo)
		for _, typed := range lookAlikes {
			t.Run("look-alike "+typed, func(t *testing.T) {
				e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": typed}})
				if n := e.count(&models.ResetToken{}, "user_id = ?", id); n != 0 {
					t.Fatalf("a reset for %q made %d reset tokens for %s's account", typed, n, ceo)
				}
				if n := e.mailer.Sent(typed); n != 0 {
					t.Fatalf("%d reset mails went to the typed address %q", n, typed)
				}
				if canon, err := models.NormalizeEmail(typed); err != nil || e.mailer.Sent(canon) != 0 || e.mailer.Sent(ceo) != 0 {
					t.Fatalf("a reset for %q (canonical %q, %v) mailed a token", typed, canon, err)
				}
			})
		}
		t.Run("other case", func(t *testing.T) {
			typed := caseVariants[0]
			e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": typed}})
			if n := e.mailer.Sent(typed); n != 0 {
				t.Fatalf("%d reset mails went to the typed spelling %q", n, typed)
			}
			if n := e.mailer.Sent(ceo); n != 1 {
				t.Fatalf("%d reset mails went to the stored address %s, want 1", n, ceo)
			}
			// The token is the CEO's, and it works.
			e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/password-reset/confirm",
				body: map[string]string{"token": e.mailer.Last(ceo), "new_password": "the ceo's new password"}})
			apiWantLogin(e, "the owner after the reset", ceo, "the ceo's new password")
		})
	})
}

// TestLookAlikeEmailLogin: a look-alike of a registered address does not
// log in with the account's password, so guessing under look-alikes
// gets nothing; and the case variants of the address spend the one
// brute-force budget of the account: 3 wrong guesses under 3 spellings
// lock it (abThrottle). On MariaDB with the default collation the
// look-alikes logged in; on SQLite the decomposed spelling of an accented
// address had a budget of its own.
func TestLookAlikeEmailLogin(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key", abThrottle)
		e.register(ceo)
		for _, typed := range lookAlikes {
			t.Run("look-alike "+typed, func(t *testing.T) {
				apiWantNoLogin(e, "the right password under "+typed, typed, password)
			})
		}
		// The look-alikes' failures were not the account's.
		apiWantLogin(e, "the owner after the look-alikes", ceo, password)
		cases := []struct {
			name, registered string
			spellings        []string
		}{
			{"case", ceo, caseVariants},
			// NFC, NFD and upper case of an accented local part.
			{"normalization form", "josé@example.com", []string{"jose\u0301@example.com", "JOSÉ@example.com", "JOSE\u0301@EXAMPLE.COM"}},
			// The Unicode domain and its punycode.
			{"idna", "ann@bücher.de", []string{"ann@xn--bcher-kva.de", "ANN@BÜCHER.DE", "ann@bu\u0308cher.de"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.registered != ceo {
					e.register(c.registered)
				}
				for _, s := range c.spellings {
					apiWantNoLogin(e, "a wrong guess under "+s, s, "wrong password")
				}
				abWantLimited(t, "the right password after three wrong guesses", apiLogin(e, c.registered, password))
				for _, s := range c.spellings {
					abWantLimited(t, "the right password under "+s, apiLogin(e, s, password))
				}
			})
		}
	})
}

// TestLookAlikeEmailRegister: one canonical address is one account,
// however it is spelled; a look-alike registered first is another
// account and does not keep the real owner out (on MariaDB with the
// default collation it answered 409 to the owner).
func TestLookAlikeEmailRegister(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		cases := []struct {
			first  string
			stored string
			again  []string
		}{
			{ceo, ceo, caseVariants},
			{"josé@example.com", "josé@example.com", []string{"jose\u0301@example.com", "JOSÉ@Example.com"}},
			{"ann@BÜCHER.de", "ann@xn--bcher-kva.de", []string{"ann@xn--bcher-kva.de", "ann@bücher.de", "Ann@Bu\u0308cher.DE"}},
		}
		for _, c := range cases {
			t.Run(c.first, func(t *testing.T) {
				r := e.do(http.StatusCreated, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": c.first, "password": password}})
				if got := r.Body["user"].(map[string]any)["email"]; got != c.stored {
					t.Fatalf("registered %q as %q, want %q", c.first, got, c.stored)
				}
				for _, s := range c.again {
					apiWantErr(t, "registering "+s+" again", e.send(req{method: "POST", path: "/api/v1/auth/register",
						body: map[string]string{"email": s, "password": password}}), http.StatusConflict, "email_taken")
				}
				if n := e.count(&models.User{}, "email = ?", c.stored); n != 1 {
					t.Fatalf("%d accounts of %s, want 1", n, c.stored)
				}
			})
		}
		t.Run("look-alike first", func(t *testing.T) {
			e := newEnv(t, driver, "password_key")
			fake := "ceo@compány.com"
			e.register(fake)
			e.register(ceo)
			apiWantLogin(e, "the owner", ceo, password)
			// Each reset goes to its own account's stored address.
			for _, typed := range []string{fake, ceo} {
				e.do(http.StatusAccepted, req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": typed}})
			}
			if e.mailer.Sent(ceo) != 1 || e.mailer.Sent("ceo@xn--compny-sta.com") != 1 || e.mailer.Sent(fake) != 0 {
				t.Fatalf("reset mails: %d to %s, %d to the look-alike's stored address, %d to %q; want 1, 1, 0",
					e.mailer.Sent(ceo), ceo, e.mailer.Sent("ceo@xn--compny-sta.com"), e.mailer.Sent(fake), fake)
			}
			if e.mailer.Last(ceo) == e.mailer.Last("ceo@xn--compny-sta.com") {
				t.Fatal("the two accounts were mailed the same token")
			}
		})
	})
}

// TestEmailMigration: a database of an earlier release (emails only
// lower-cased; on MySQL the server's default, accent-insensitive
// collation) is brought to the canonical form by the next start:
// the column becomes byte-exact, each stored email is rewritten to its
// canonical spelling, and an account whose canonical spelling is already
// another's keeps its old one and is named (by id) in a warning.
func TestEmailMigration(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		e := newEnv(t, driver, "password_key")
		unicodeDomain := e.register("ann@xn--bcher-kva.de")
		canonical := e.register("bob@xn--bcher-kva.de")
		conflict := e.register("bob2@xn--bcher-kva.de")
		old := map[string]string{unicodeDomain: "ann@bücher.de", conflict: "bob@bücher.de"}
		if driver == "mysql" {
			if err := e.db.Exec("ALTER TABLE users MODIFY email varchar(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL").Error; err != nil {
				t.Fatal(err)
			}
		}
		for id, addr := range old {
			if err := e.db.Exec("UPDATE users SET email = ? WHERE id = ?", addr, id).Error; err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		startServer(t, authserver.Options{Config: e.cfg, DB: e.db, Secret: testSecret, Mailer: e.mailer, Now: e.clock.Now,
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		want := map[string]string{unicodeDomain: "ann@xn--bcher-kva.de", canonical: "bob@xn--bcher-kva.de", conflict: "bob@bücher.de"}
		for id, addr := range want {
			var got string
			if err := e.db.Raw("SELECT email FROM users WHERE id = ?", id).Scan(&got).Error; err != nil || got != addr {
				t.Fatalf("user %s: email %q (%v), want %q", id, got, err, addr)
			}
		}
		if !strings.Contains(logs.String(), "conflicting_user_ids=["+conflict+"]") {
			t.Fatalf("no warning naming user %s in the log:\n%s", conflict, logs.String())
		}
		apiWantLogin(e, "the rewritten account", "ann@bücher.de", password)
		if driver == "mysql" {
			// A later start's AutoMigrate leaves the collation alone (else
			// every start would rebuild the table).
			if err := e.db.AutoMigrate(models.All()...); err != nil {
				t.Fatal(err)
			}
			var collation string
			if err := e.db.Raw("SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'email'").Scan(&collation).Error; err != nil || collation != "utf8mb4_bin" {
				t.Fatalf("users.email collation %q (%v), want utf8mb4_bin", collation, err)
			}
			// Equal to the stored address under utf8mb4_general_ci.
			apiWantNoLogin(e, "a look-alike after the migration", "ånn@xn--bcher-kva.de", password)
		}
	})
}
