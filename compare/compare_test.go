package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/strategy"
)

// testRequests keeps the timed part short: the test checks the numbers'
// meaning, not their precision.
const testRequests = 50

// jsonReport mirrors the documented JSON schema independently of Report,
// so that a renamed or added field fails the strict decode below.
type jsonReport struct {
	Version     int       `json:"version"`
	Driver      string    `json:"driver"`
	GeneratedAt time.Time `json:"generated_at"`
	Go          string    `json:"go"`
	Requests    int       `json:"requests"`
	Strategies  []string  `json:"strategies"`
	Guarantees  []struct {
		ID    string            `json:"id"`
		Title string            `json:"title"`
		Claim string            `json:"claim"`
		Cells map[string]string `json:"cells"`
	} `json:"guarantees"`
	Costs []struct {
		ID     string             `json:"id"`
		Title  string             `json:"title"`
		Unit   string             `json:"unit"`
		Values map[string]float64 `json:"values"`
	} `json:"costs"`
	Mismatches []struct {
		Strategy  string `json:"strategy"`
		Guarantee string `json:"guarantee"`
		Claimed   bool   `json:"claimed"`
		Held      bool   `json:"held"`
		Detail    string `json:"detail"`
	} `json:"mismatches"`
	Notes []string `json:"notes"`
}

func decodeJSON(t *testing.T, raw []byte) *jsonReport {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r jsonReport
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the json output does not decode to the documented schema: %v\n%s", err, raw)
	}
	return &r
}

// TestCompare runs the whole comparison on every test database and checks
// that every strategy does what it claims, the known facts of the table,
// the three formats, and that the databases are gone afterwards.
func TestCompare(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			_, dsn := dbtest.DSN(t, driver)
			var progress bytes.Buffer
			rep, err := Measure(context.Background(), Options{
				Driver: driver, DSN: dsn, Requests: testRequests, Progress: &progress,
			})
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			for _, m := range rep.Mismatches {
				t.Errorf("mismatch: %s", m)
			}
			if err := rep.Err(); err != nil {
				t.Fatalf("Err: %v", err)
			}
			if !slices.Equal(rep.Strategies, strategy.Names()) {
				t.Fatalf("strategies %v, want all in strategy.Names() order %v", rep.Strategies, strategy.Names())
			}
			for _, g := range rep.Guarantees {
				for _, s := range rep.Strategies {
					if c := g.Cells[s]; c != Pass && c != NA {
						t.Errorf("%s / %s: cell %q, want pass or n/a", s, g.ID, c)
					}
				}
			}
			checkFacts(t, rep)
			checkFormats(t, rep)
			for _, want := range []string{
				"compare: session_table: refresh token reuse detected\n",
				"compare: single_device: a new login signs out other devices\n",
			} {
				if !strings.Contains(progress.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, progress.String())
				}
			}
			checkDatabasesRemoved(t, driver, dsn)
		})
	}
}

// checkFacts asserts what the strategies are designed to show.
func checkFacts(t *testing.T, rep *Report) {
	t.Helper()
	cells := []struct {
		strategy, guarantee string
		want                Cell
	}{
		{"stateless", "logout_all", NA},
		{"stateless", "logout_this_device", NA},
		{"stateless", "password_change", NA},
		{"stateless", "account_deletion", NA},
		{"stateless", "no_refresh_after_logout_all", NA},
		{"stateless", "others_stay_after_logout", Pass},
		{"stateless", "refresh_reuse_detected", Pass},
		{"password_key", "logout_all", Pass},
		{"password_key", "logout_this_device", NA},
		{"password_key", "password_reset", Pass},
		{"single_device", "new_login_signs_out_others", Pass},
		{"single_device", "others_stay_after_logout", NA},
		{"single_device", "logout_this_device", Pass},
		{"single_device", "revoke_device", Pass},
		{"single_device", "device_limit", NA},
		{"multi_device", "new_login_signs_out_others", NA},
		{"multi_device", "device_limit", Pass},
		{"multi_device", "list_devices", Pass},
		{"valid_date", "list_devices", NA},
		{"valid_date", "account_deletion", Pass},
		{"token_version", "no_refresh_after_logout_all", Pass},
		{"token_version", "revoke_device", NA},
		{"session_table", "new_login_signs_out_others", NA},
		{"session_table", "device_limit", Pass},
		{"session_table", "revoke_device", Pass},
		{"session_table", "refresh_reuse_detected", Pass},
	}
	for _, c := range cells {
		if got := cell(t, rep, c.guarantee, c.strategy); got != c.want {
			t.Errorf("%s / %s: %q, want %q", c.strategy, c.guarantee, got, c.want)
		}
	}
	// Only single_device signs other devices out by logging in.
	for _, s := range rep.Strategies {
		if s != "single_device" && cell(t, rep, "new_login_signs_out_others", s) != NA {
			t.Errorf("%s: a new login signs out other devices, want n/a", s)
		}
	}

	// With the verification cache (the default), a verification of a
	// cached user reads nothing, under every strategy.
	for _, s := range rep.Strategies {
		if q := cost(t, rep, "queries_per_verify", s); q != 0 {
			t.Errorf("%s: %v queries per verify, want 0: the cache answers", s, q)
		}
	}
	// A stateless login stores its refresh token and its audit event,
	// nothing else.
	if w := cost(t, rep, "writes_per_login", "stateless"); w != 2 {
		t.Errorf("stateless: %v writes per login, want 2", w)
	}
	refreshRow := cost(t, rep, "bytes_per_session", "stateless")
	if refreshRow <= 0 {
		t.Errorf("stateless: %v bytes per session, want the refresh token row's > 0", refreshRow)
	}
	for _, s := range []string{"single_device", "multi_device", "session_table"} {
		if b := cost(t, rep, "bytes_per_session", s); b <= refreshRow {
			t.Errorf("%s: %v bytes per session, want more than stateless's %v: it stores the device", s, b, refreshRow)
		}
	}
	if r := cost(t, rep, "verify_median_vs_stateless", "stateless"); r != 1 {
		t.Errorf("stateless: ratio to itself %v, want 1", r)
	}
	for _, s := range rep.Strategies {
		med, p99 := cost(t, rep, "verify_median_us", s), cost(t, rep, "verify_p99_us", s)
		if med <= 0 || p99 < med {
			t.Errorf("%s: median %vµs, p99 %vµs: want 0 < median <= p99", s, med, p99)
		}
	}
}

func cell(t *testing.T, rep *Report, guarantee, strategy string) Cell {
	t.Helper()
	for _, g := range rep.Guarantees {
		if g.ID == guarantee {
			return g.Cells[strategy]
		}
	}
	t.Fatalf("no guarantee %q", guarantee)
	return ""
}

func cost(t *testing.T, rep *Report, id, strategy string) float64 {
	t.Helper()
	for _, c := range rep.Costs {
		if c.ID == id {
			v, ok := c.Values[strategy]
			if !ok {
				t.Fatalf("cost %q has no value for %s", id, strategy)
			}
			return v
		}
	}
	t.Fatalf("no cost %q", id)
	return 0
}

// checkFormats writes the report in every format.
func checkFormats(t *testing.T, rep *Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.Write(&buf, "json"); err != nil {
		t.Fatalf("json: %v", err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"mismatches": []`)) {
		t.Errorf("json: mismatches is not an empty list")
	}
	j := decodeJSON(t, buf.Bytes())
	if j.Version != 1 || j.Driver != rep.Driver || j.Requests != testRequests || j.GeneratedAt.IsZero() || !strings.HasPrefix(j.Go, "go") {
		t.Errorf("json header: version %d driver %q requests %d generated_at %v go %q",
			j.Version, j.Driver, j.Requests, j.GeneratedAt, j.Go)
	}
	if !slices.Equal(j.Strategies, strategy.Names()) {
		t.Errorf("json strategies %v", j.Strategies)
	}
	var ids []string
	for _, g := range j.Guarantees {
		ids = append(ids, g.ID)
		if len(g.Cells) != len(j.Strategies) {
			t.Errorf("json guarantee %s: %d cells for %d strategies", g.ID, len(g.Cells), len(j.Strategies))
		}
		for s, c := range g.Cells {
			if !slices.Contains([]string{"pass", "FAIL", "n/a"}, c) {
				t.Errorf("json guarantee %s / %s: cell %q", g.ID, s, c)
			}
		}
	}
	var want []string
	for _, g := range guarantees {
		want = append(want, g.id)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("json guarantee ids %v, want %v", ids, want)
	}
	if len(j.Costs) != len(costRows) {
		t.Errorf("json: %d costs, want %d", len(j.Costs), len(costRows))
	}
	for _, c := range j.Costs {
		if c.Unit == "" || len(c.Values) != len(j.Strategies) {
			t.Errorf("json cost %s: unit %q, %d values", c.ID, c.Unit, len(c.Values))
		}
	}

	for _, format := range []string{"table", "markdown"} {
		buf.Reset()
		if err := rep.Write(&buf, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := buf.String()
		for _, s := range append(slices.Clone(rep.Strategies), "bcrypt cost is lowered to 4", "Mismatches: none") {
			if !strings.Contains(out, s) {
				t.Errorf("%s output lacks %q", format, s)
			}
		}
		for _, g := range guarantees {
			if !strings.Contains(out, g.title) {
				t.Errorf("%s output lacks the row %q", format, g.title)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.TrimRight(line, " ") != line {
				t.Errorf("%s: trailing spaces in %q", format, line)
			}
			if format == "markdown" && strings.HasPrefix(line, "|") {
				if n := strings.Count(line, " |"); n != len(rep.Strategies)+1 {
					t.Errorf("markdown row has %d cells, want %d: %q", n, len(rep.Strategies)+1, line)
				}
			}
		}
	}
}

// checkDatabasesRemoved fails if a per-strategy database outlived the run.
func checkDatabasesRemoved(t *testing.T, driver, dsn string) {
	t.Helper()
	switch driver {
	case "sqlite":
		left, err := filepath.Glob(filepath.Join(filepath.Dir(dsn), "*_cmp_*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("SQLite files left behind: %v", left)
		}
	case "mysql":
		mc, err := mysqldriver.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := models.Open("mysql", dsn, models.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer closeDB(admin)
		var left []string
		if err := admin.Raw("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?",
			strings.ReplaceAll(mc.DBName, "_", "\\_")+"\\_cmp\\_%").Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("MySQL databases left behind: %v", left)
		}
	}
}

// TestFalseClaimsFail makes stateless claim logout_this_device, which it
// cannot do, and single_device deny it, which it does: Run must report
// both, mark the first FAIL and return ErrMismatch.
func TestFalseClaimsFail(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "auth.db"), Requests: 5, Format: "json", Out: &out,
		Strategies: []string{"single_device", "stateless"},
		adjustClaims: func(name string, claims map[string]bool) {
			claims["logout_this_device"] = name == "stateless"
		},
	})
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Run: %v, want ErrMismatch", err)
	}
	j := decodeJSON(t, out.Bytes())
	if !slices.Equal(j.Strategies, []string{"stateless", "single_device"}) {
		t.Errorf("strategies %v, want strategy.Names() order", j.Strategies)
	}
	wantCells := map[string]string{"stateless": "FAIL", "single_device": "pass"}
	for _, g := range j.Guarantees {
		if g.ID == "logout_this_device" && !maps.Equal(g.Cells, wantCells) {
			t.Errorf("logout_this_device cells %v, want %v", g.Cells, wantCells)
		}
	}
	type key struct {
		strategy, guarantee string
		claimed, held       bool
	}
	var got []key
	for _, m := range j.Mismatches {
		got = append(got, key{m.Strategy, m.Guarantee, m.Claimed, m.Held})
		if m.Detail == "" {
			t.Errorf("mismatch %v has no detail", m)
		}
	}
	want := []key{
		{"stateless", "logout_this_device", true, false},
		{"single_device", "logout_this_device", false, true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("mismatches %v, want %v", got, want)
	}
}

func TestJudge(t *testing.T) {
	plain := guarantee{id: "g", claim: "c"}
	overRevoke := guarantee{id: "g", claim: "c", unclaimedMayHold: true}
	broke := errors.New("POST /x: server error 500")
	cases := []struct {
		name         string
		g            guarantee
		claimed      bool
		err          error
		want         Cell
		wantMismatch bool
	}{
		{"claimed and held", plain, true, nil, Pass, false},
		{"claimed, not held", plain, true, shortfall("still accepted"), Fail, true},
		{"not claimed, not held", plain, false, shortfall("still accepted"), NA, false},
		{"not claimed, held", plain, false, nil, Pass, true},
		{"not claimed, held, about over-revoking", overRevoke, false, nil, Pass, false},
		{"claimed, broke", plain, true, broke, Fail, true},
		{"not claimed, broke", plain, false, broke, Fail, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, m := judge(c.g, "s", c.claimed, c.err)
			if got != c.want || (m != nil) != c.wantMismatch {
				t.Fatalf("judge: %q, mismatch %v; want %q, mismatch %v", got, m, c.want, c.wantMismatch)
			}
			if m != nil && (m.Claimed != c.claimed || m.Held != (c.err == nil) || m.Detail == "") {
				t.Fatalf("mismatch %+v", *m)
			}
		})
	}
}

// TestRowBytes pins the documented size rule: strings and bytes by length,
// integers and times 8, NULL 0, the device map by its stored JSON.
func TestRowBytes(t *testing.T) {
	now := time.Now()
	rt := models.RefreshToken{
		ID: 1, TokenHash: make([]byte, 32), UserID: 2, FamilyID: strings.Repeat("f", 22),
		DeviceName: "laptop", IssuedAt: now, ExpiresAt: now, UsedAt: nil, RevokedAt: &now,
	}
	if got, want := rowBytes(rt), 8+32+8+22+6+8+8+0+8; got != want {
		t.Errorf("refresh token row: %d bytes, want %d", got, want)
	}
	u := models.User{ID: 1, Email: "a@b.co", PasswordHash: "h", KeySalt: make([]byte, 16)}
	empty := rowBytes(u)
	if want := 8 + 6 + 1 + 8 + 8 + 16 + 0 + 0 + 8 + 8 + 8; empty != want {
		t.Errorf("user row: %d bytes, want %d", empty, want)
	}
	u.Devices = models.DeviceMap{"id": {Name: "phone", CreatedAt: now, LastSeenAt: now}}
	stored, err := u.Devices.Value()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowBytes(u)-empty, len(stored.(string)); got != want {
		t.Errorf("device map: %d bytes, want its JSON's %d", got, want)
	}
}

func TestOptionsRejected(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"driver", Options{Driver: "postgres"}, "--driver"},
		{"mysql without dsn", Options{Driver: "mysql"}, "--dsn"},
		{"format", Options{Driver: "sqlite", Format: "csv"}, "--format"},
		{"strategy", Options{Driver: "sqlite", Strategies: []string{"stateless", "jwt_blacklist"}}, "jwt_blacklist"},
		{"no strategy", Options{Driver: "sqlite", Strategies: []string{" "}}, "--strategies"},
		{"requests", Options{Driver: "sqlite", Requests: -1}, "--requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Run(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run: %v, want an error about %s", err, c.want)
			}
		})
	}
}

func TestSQLiteFile(t *testing.T) {
	cases := []struct{ dsn, full, path string }{
		{"data/auth.db", "data/auth_cmp_stateless.db", "data/auth_cmp_stateless.db"},
		{"auth", "auth_cmp_stateless", "auth_cmp_stateless"},
		{"file:/tmp/a.db?_pragma=x", "file:/tmp/a_cmp_stateless.db?_pragma=x", "/tmp/a_cmp_stateless.db"},
	}
	for _, c := range cases {
		full, path := sqliteFile(c.dsn, "stateless")
		if full != c.full || path != c.path {
			t.Errorf("sqliteFile(%q) = %q, %q; want %q, %q", c.dsn, full, path, c.full, c.path)
		}
	}
}
