package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
	"github.com/revocable/authserver/scenario"
	"github.com/revocable/authserver/strategy"
)

// The timing options of the tests are small: the test checks the numbers'
// meaning, not their precision.
const (
	testRequests = 20
	testClients  = 3
	testDuration = 60 * time.Millisecond
)

// jsonReport mirrors the documented JSON schema independently of Report,
// so that a renamed or added field fails the strict decode below.
type jsonReport struct {
	Version     int       `json:"version"`
	Driver      string    `json:"driver"`
	GeneratedAt time.Time `json:"generated_at"`
	Go          string    `json:"go"`
	CPUs        int       `json:"cpus"`
	Requests    int       `json:"requests"`
	Clients     int       `json:"clients"`
	DurationMS  int64     `json:"duration_ms"`
	Strategies  []string  `json:"strategies"`
	Guarantees  []struct {
		ID       string            `json:"id"`
		Title    string            `json:"title"`
		Claim    string            `json:"claim"`
		Setting  string            `json:"setting"`
		Cells    map[string]string `json:"cells"`
		Outcomes map[string]string `json:"outcomes"`
	} `json:"guarantees"`
	Costs []struct {
		ID     string             `json:"id"`
		Title  string             `json:"title"`
		Unit   string             `json:"unit"`
		Cache  string             `json:"cache"`
		Values map[string]float64 `json:"values"`
	} `json:"costs"`
	Invalidation []struct {
		ID       string            `json:"id"`
		Title    string            `json:"title"`
		Request  string            `json:"request"`
		Setting  string            `json:"setting"`
		Writes   map[string]*int64 `json:"writes"`
		Messages map[string]*int64 `json:"messages"`
	} `json:"invalidation"`
	VerifyReads map[string][]string `json:"verify_reads"`
	Mismatches  []struct {
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
// that every strategy does what it claims and what the scenario table
// expects, the known facts of the costs, the four formats, and that the
// databases are gone afterwards.
func TestCompare(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			_, dsn := dbtest.DSN(t, driver)
			if driver == "postgres" {
				// compare creates databases named after the DSN's: it
				// needs a database of its own, not dbtest's schema.
				dsn = dbtest.CreatePostgresDatabase(t)
			}
			var progress bytes.Buffer
			rep, err := Measure(context.Background(), Options{
				Driver: driver, DSN: dsn, Requests: testRequests, Clients: testClients, Duration: testDuration, Progress: &progress,
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
			checkGuarantees(t, rep)
			checkCosts(t, rep)
			checkInvalidation(t, rep)
			checkFormats(t, rep)
			for _, want := range []string{
				"compare: session_table: refresh token reuse detected\n",
				"compare: single_device: a new login signs out other devices\n",
				"compare: multi_device: measuring the invalidation cost of each revocation\n",
			} {
				if !strings.Contains(progress.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, progress.String())
				}
			}
			checkDatabasesRemoved(t, driver, dsn)
		})
	}
}

// checkGuarantees asserts that the matrix is the scenario table's: every
// outcome the one the table expects, and the cells the designs promise.
func checkGuarantees(t *testing.T, rep *Report) {
	t.Helper()
	table := scenario.All()
	if len(rep.Guarantees) != len(table) {
		t.Fatalf("%d guarantee rows, want one per case of the scenario table (%d)", len(rep.Guarantees), len(table))
	}
	for i, c := range table {
		g := rep.Guarantees[i]
		if g.ID != c.ID || g.Title != c.Title || g.Claim != c.Claim || g.Setting != c.Setting {
			t.Errorf("row %d is %s %q, want the case %s %q", i, g.ID, g.Title, c.ID, c.Title)
		}
		for _, s := range rep.Strategies {
			if got := g.Outcomes[s]; got != string(c.Want[s]) {
				t.Errorf("%s / %s: outcome %q, the table expects %q", s, g.ID, got, c.Want[s])
			}
			if cell := g.Cells[s]; cell != Pass && cell != NA {
				t.Errorf("%s / %s: cell %q, want pass or n/a", s, g.ID, cell)
			}
		}
	}
	cells := []struct {
		strategy, guarantee string
		want                Cell
	}{
		{"stateless", "logout_all", NA},
		{"stateless", "logout_this_device", NA},
		{"stateless", "logout_others", NA},
		{"stateless", "password_change", NA},
		{"stateless", "account_deletion", NA},
		{"stateless", "no_refresh_after_logout_all", NA},
		{"stateless", "others_stay_after_logout", Pass},
		{"stateless", "refresh_reuse_detected", Pass},
		{"password_key", "logout_all", Pass},
		{"password_key", "logout_others", Pass},
		{"password_key", "logout_this_device", NA},
		{"password_key", "password_reset", Pass},
		{"single_device", "new_login_signs_out_others", Pass},
		{"single_device", "others_stay_after_logout", NA},
		{"single_device", "logout_this_device", Pass},
		{"single_device", "logout_others", Pass},
		{"single_device", "revoke_device", Pass},
		{"single_device", "device_limit", NA},
		{"multi_device", "new_login_signs_out_others", NA},
		{"multi_device", "device_limit", Pass},
		{"multi_device", "device_limit_evict_oldest", Pass},
		{"multi_device", "list_devices", Pass},
		{"multi_device", "last_seen_throttled", Pass},
		{"valid_date", "list_devices", NA},
		{"valid_date", "account_deletion", Pass},
		{"valid_date", "login_same_instant_as_logout_all", Pass},
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
	for _, s := range rep.Strategies {
		// Only single_device signs other devices out by logging in.
		if s != "single_device" && cell(t, rep, "new_login_signs_out_others", s) != NA {
			t.Errorf("%s: a new login signs out other devices, want n/a", s)
		}
		// With jwt.refresh_supersedes_access off (the default) no strategy
		// ends the access token a refresh replaced; with it on, exactly
		// the three that track devices do.
		if c := cell(t, rep, "refresh_supersedes_access_off", s); c != NA {
			t.Errorf("%s: a refresh ends the replaced access token with the option off: %q, want n/a", s, c)
		}
		want := map[bool]Cell{true: Pass, false: NA}[tracksDevices(s)]
		if c := cell(t, rep, "refresh_supersedes_access_on", s); c != want {
			t.Errorf("%s: a refresh ends the replaced access token with the option on: %q, want %q", s, c, want)
		}
	}
}

func tracksDevices(s string) bool {
	return s == "single_device" || s == "multi_device" || s == "session_table"
}

// checkCosts asserts what the strategies and the cache are designed to
// show.
func checkCosts(t *testing.T, rep *Report) {
	t.Helper()
	for _, s := range rep.Strategies {
		// With the verification cache (the default), a verification of a
		// cached user reads nothing, under every strategy.
		if q := cost(t, rep, "queries_per_verify", s); q != 0 {
			t.Errorf("%s: %v queries per verify with the cache, want 0: the cache answers", s, q)
		}
		// Without it, every strategy but stateless reads the user.
		q := cost(t, rep, "queries_per_verify_cache_off", s)
		reads := rep.VerifyReads[s]
		switch s {
		case "stateless":
			if q != 0 || len(reads) != 0 {
				t.Errorf("stateless: %v queries per verify without the cache, reading %v; want none", q, reads)
			}
		case "session_table":
			if q < 2 || !slices.Equal(reads, []string{"users", "sessions"}) {
				t.Errorf("session_table: %v queries per verify without the cache, reading %v; want >= 2, the user and its sessions", q, reads)
			}
		default:
			if q < 1 || !slices.Equal(reads, []string{"users"}) {
				t.Errorf("%s: %v queries per verify without the cache, reading %v; want >= 1, the user row", s, q, reads)
			}
		}
		for _, id := range []string{"verify_median_us", "verify_median_us_cache_off"} {
			med, p99 := cost(t, rep, id, s), cost(t, rep, strings.Replace(id, "median", "p99", 1), s)
			if med <= 0 || p99 < med {
				t.Errorf("%s: %s %vµs, p99 %vµs: want 0 < median <= p99", s, id, med, p99)
			}
		}
		for _, id := range []string{"verify_rps", "verify_rps_cache_off"} {
			if v := cost(t, rep, id, s); v <= 0 {
				t.Errorf("%s: %s = %v, want > 0", s, id, v)
			}
		}
		for _, c := range rep.Costs {
			if strings.HasSuffix(strings.TrimSuffix(c.ID, "_cache_off"), "_vs_stateless") && c.Values[s] <= 0 {
				t.Errorf("%s: %s = %v, want > 0", s, c.ID, c.Values[s])
			}
		}
	}
	for _, c := range rep.Costs {
		if strings.Contains(c.ID, "_vs_stateless") && c.Values["stateless"] != 1 {
			t.Errorf("stateless: %s = %v, want 1: the ratio to itself", c.ID, c.Values["stateless"])
		}
		wantCache := map[bool]string{true: "off", false: "on"}[strings.HasSuffix(c.ID, "_cache_off")]
		if c.ID == "bytes_per_session" {
			wantCache = ""
		}
		if c.Cache != wantCache {
			t.Errorf("%s: cache %q, want %q", c.ID, c.Cache, wantCache)
		}
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
}

// checkInvalidation asserts the invalidation costs: a request that
// changes the user's revocation state writes exactly one outbox row (one
// message), one that does not writes none, and a strategy answers 501
// exactly for what it does not claim.
func checkInvalidation(t *testing.T, rep *Report) {
	t.Helper()
	var ids []string
	for _, k := range kinds() {
		ids = append(ids, k.id)
	}
	var got []string
	for _, r := range rep.Invalidation {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("invalidation rows %v, want %v", got, ids)
	}
	for _, s := range rep.Strategies {
		st, err := strategy.Build(s, strategy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		caps := strategy.CapabilitiesOf(st)
		// supported: the strategy does it; changes: it changes the user's
		// revocation state (its password, its account, the strategy's
		// state), which is announced.
		want := map[string]struct{ supported, changes bool }{
			"logout":            {true, caps.LogoutThisDevice},
			"logout_all":        {caps.LogoutAllDevices, true},
			"logout_others":     {caps.LogoutOtherDevices, true},
			"revoke_device":     {caps.RevokeDevice, true},
			"password_change":   {true, true},
			"password_reset":    {true, true},
			"account_deletion":  {true, true},
			"login":             {true, tracksDevices(s)},
			"refresh":           {true, false},
			"refresh_supersede": {true, tracksDevices(s)},
		}
		for _, r := range rep.Invalidation {
			w, m := r.Writes[s], r.Messages[s]
			exp := want[r.ID]
			if !exp.supported {
				if w != nil || m != nil {
					t.Errorf("%s / %s: %v writes, %v messages; want none: 501 not_supported", s, r.ID, w, m)
				}
				continue
			}
			if w == nil || m == nil {
				t.Errorf("%s / %s: not supported, want it measured", s, r.ID)
				continue
			}
			wantMessages := map[bool]int64{true: 1, false: 0}[exp.changes]
			if *m != wantMessages {
				t.Errorf("%s / %s: %d outbox messages, want %d", s, r.ID, *m, wantMessages)
			}
			// At least the audit event, and the outbox row among them.
			if *w < 1+*m {
				t.Errorf("%s / %s: %d writes, want at least %d", s, r.ID, *w, 1+*m)
			}
		}
	}
	// A stateless login stores its refresh token and its audit event,
	// nothing else.
	for _, r := range rep.Invalidation {
		if r.ID == "login" {
			if w := r.Writes["stateless"]; w == nil || *w != 2 {
				t.Errorf("stateless: login writes %v, want 2", w)
			}
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
	if j.Version != 2 || j.Driver != rep.Driver || j.Requests != testRequests || j.Clients != testClients ||
		j.DurationMS != testDuration.Milliseconds() || j.CPUs < 1 || j.GeneratedAt.IsZero() || !strings.HasPrefix(j.Go, "go") {
		t.Errorf("json header: version %d driver %q requests %d clients %d duration_ms %d cpus %d generated_at %v go %q",
			j.Version, j.Driver, j.Requests, j.Clients, j.DurationMS, j.CPUs, j.GeneratedAt, j.Go)
	}
	if !slices.Equal(j.Strategies, strategy.Names()) {
		t.Errorf("json strategies %v", j.Strategies)
	}
	var ids, want []string
	for _, g := range j.Guarantees {
		ids = append(ids, g.ID)
		if len(g.Cells) != len(j.Strategies) || len(g.Outcomes) != len(j.Strategies) {
			t.Errorf("json guarantee %s: %d cells and %d outcomes for %d strategies", g.ID, len(g.Cells), len(g.Outcomes), len(j.Strategies))
		}
		for s, c := range g.Cells {
			if !slices.Contains([]string{"pass", "FAIL", "n/a"}, c) {
				t.Errorf("json guarantee %s / %s: cell %q", g.ID, s, c)
			}
		}
	}
	for _, c := range scenario.All() {
		want = append(want, c.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("json guarantee ids %v, want %v", ids, want)
	}
	if len(j.Costs) != 2*len(costMetrics(testClients))+1 {
		t.Errorf("json: %d costs, want %d", len(j.Costs), 2*len(costMetrics(testClients))+1)
	}
	for _, c := range j.Costs {
		if c.Unit == "" || len(c.Values) != len(j.Strategies) {
			t.Errorf("json cost %s: unit %q, %d values", c.ID, c.Unit, len(c.Values))
		}
	}
	for _, r := range j.Invalidation {
		if r.Request == "" || len(r.Writes) != len(j.Strategies) || len(r.Messages) != len(j.Strategies) {
			t.Errorf("json invalidation %s: request %q, %d writes, %d messages", r.ID, r.Request, len(r.Writes), len(r.Messages))
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"stateless": null`)) {
		t.Errorf("json: an unsupported revocation is not null")
	}
	if len(j.VerifyReads) != len(j.Strategies) {
		t.Errorf("json verify_reads %v", j.VerifyReads)
	}

	for _, format := range []string{"table", "markdown"} {
		buf.Reset()
		if err := rep.Write(&buf, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := buf.String()
		for _, s := range append(slices.Clone(rep.Strategies), "bcrypt cost 4", "Mismatches: none", "session_table: users, sessions", "501") {
			if !strings.Contains(out, s) {
				t.Errorf("%s output lacks %q", format, s)
			}
		}
		for _, title := range rowTitles(rep) {
			if !strings.Contains(out, title) {
				t.Errorf("%s output lacks the row %q", format, title)
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
	buf.Reset()
	if err := rep.Write(&buf, "html"); err != nil {
		t.Fatalf("html: %v", err)
	}
	checkHTML(t, buf.Bytes(), rep)
}

// rowTitles are the titles of every row of the report.
func rowTitles(rep *Report) []string {
	var out []string
	for _, g := range rep.Guarantees {
		out = append(out, g.Title)
	}
	for _, c := range rep.Costs {
		out = append(out, c.Title)
	}
	for _, r := range rep.Invalidation {
		out = append(out, r.Title)
	}
	return out
}

// checkHTML requires the HTML report to be well-formed (it is written as
// XML-compatible HTML, so a strict XML parse must pass), self-contained (no
// script, no event handler, no reference to anything outside the page),
// and complete: every row, every strategy, a chart per cost and
// invalidation row, and the guarantee cells with the report's values.
func checkHTML(t *testing.T, raw []byte, rep *Report) {
	t.Helper()
	lower := strings.ToLower(string(raw))
	for _, bad := range []string{"<script", "http://", "https://", "url(", "@import"} {
		if strings.Contains(lower, bad) {
			t.Errorf("html contains %q", bad)
		}
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	var (
		text  strings.Builder
		svgs  int
		cells []string
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("html is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(tok.Name.Local)
			if slices.Contains([]string{"script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignobject"}, name) {
				t.Errorf("html has a <%s> element", name)
			}
			if name == "svg" {
				svgs++
			}
			for _, a := range tok.Attr {
				an := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(an, "on") || an == "src" || an == "href" || an == "srcset" || an == "action" {
					t.Errorf("html element <%s> has the attribute %s=%q", name, an, a.Value)
				}
				if name == "td" && an == "class" {
					cells = append(cells, a.Value)
				}
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteString(" ")
		}
	}
	if want := len(rep.Costs) + len(rep.Invalidation); svgs != want {
		t.Errorf("html has %d charts, want %d: one per cost and invalidation row", svgs, want)
	}
	var wantCells []string
	for _, g := range rep.Guarantees {
		for _, s := range rep.Strategies {
			wantCells = append(wantCells, map[Cell]string{Pass: "pass", Fail: "fail", NA: "na"}[g.Cells[s]])
		}
	}
	if !slices.Equal(cells, wantCells) {
		t.Errorf("html guarantee cells %v, want %v", cells, wantCells)
	}
	all := text.String()
	for _, s := range append(append(rowTitles(rep), rep.Strategies...), rep.Notes...) {
		if !strings.Contains(all, s) {
			t.Errorf("html lacks %q", s)
		}
	}
	for _, m := range rep.Mismatches {
		if !strings.Contains(all, m.String()) {
			t.Errorf("html lacks the mismatch %q", m)
		}
	}
}

// TestHTMLEscapes writes a report whose texts are hostile: they must come
// out as text, and the page must stay well-formed.
func TestHTMLEscapes(t *testing.T) {
	one, zero := int64(1), int64(0)
	evil := `<script>alert("x")</script> & <img src=x onerror=alert(1)>`
	rep := &Report{
		Version: SchemaVersion, Driver: "sqlite", Go: "go1", CPUs: 2, Requests: 1, Clients: 1, DurationMS: 1,
		Strategies: []string{"stateless", "session_table"},
		Guarantees: []GuaranteeRow{{ID: "g", Title: "guarantee " + evil, Claim: "c", Setting: "s",
			Cells: map[string]Cell{"stateless": NA, "session_table": Fail}, Outcomes: map[string]string{"stateless": evil}}},
		Costs: []CostRow{
			{ID: "q", Title: "queries", Unit: "queries", Cache: "on", Values: map[string]float64{"stateless": 0, "session_table": 2}},
			{ID: "q_vs_stateless_cache_off", Title: "ratio", Unit: "×", Cache: "off", Values: map[string]float64{"stateless": 1, "session_table": 2.5}},
		},
		Invalidation: []InvalidationRow{{ID: "logout", Title: "logout", Request: "POST /x",
			Writes: map[string]*int64{"stateless": nil, "session_table": &one}, Messages: map[string]*int64{"stateless": nil, "session_table": &zero}}},
		VerifyReads: map[string][]string{"session_table": {"users", "sessions"}},
		Mismatches:  []Mismatch{{Strategy: "session_table", Guarantee: "g", Claimed: true, Detail: "broke: " + evil}},
		Notes:       []string{"a note " + evil},
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, "html"); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, buf.Bytes(), rep)
	if !strings.Contains(buf.String(), "501 not supported") {
		t.Errorf("an unsupported revocation is not shown as such")
	}
	if !strings.Contains(buf.String(), "stroke-dasharray") {
		t.Errorf("the ratio chart has no 1× line")
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
	case "postgres":
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := models.Open("postgres", dsn, models.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer closeDB(admin)
		var left []string
		if err := admin.Raw("SELECT datname FROM pg_database WHERE datname LIKE ?",
			strings.ReplaceAll(pc.Database, "_", "\\_")+"\\_cmp\\_%").Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("PostgreSQL databases left behind: %v", left)
		}
	}
}

// TestFalseClaimsFail makes stateless claim logout_this_device, which it
// cannot do, and single_device deny it, which it does: Run must report
// both, mark the first FAIL and return ErrMismatch.
func TestFalseClaimsFail(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "auth.db"), Requests: 5, Clients: 1, Duration: 10 * time.Millisecond,
		Format: "json", Out: &out, Strategies: []string{"single_device", "stateless"},
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
	c := scenario.Case{ID: "g", Claim: "c", Shows: []scenario.Outcome{scenario.Revoked},
		Want: map[string]scenario.Outcome{"s": scenario.Revoked, "t": scenario.UntilExpiry}}
	broke := errors.New("POST /x: server error 500")
	cases := []struct {
		name       string
		strategy   string
		claimed    bool
		got        scenario.Outcome
		err        error
		want       Cell
		mismatches int
	}{
		{"claimed and shown", "s", true, scenario.Revoked, nil, Pass, 0},
		{"claimed, not shown", "t", true, scenario.UntilExpiry, nil, Fail, 1},
		{"not claimed, not shown", "t", false, scenario.UntilExpiry, nil, NA, 0},
		{"not claimed, shown", "s", false, scenario.Revoked, nil, Pass, 1},
		{"not what the table expects", "t", true, scenario.Revoked, nil, Pass, 1},
		{"claimed, broke", "s", true, "", broke, Fail, 1},
		{"not claimed, broke", "t", false, "", broke, Fail, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cell, ms := judge(c, tc.strategy, map[string]bool{"c": tc.claimed}, tc.got, tc.err)
			if cell != tc.want || len(ms) != tc.mismatches {
				t.Fatalf("judge: %q, mismatches %v; want %q and %d", cell, ms, tc.want, tc.mismatches)
			}
			for _, m := range ms {
				if m.Claimed != tc.claimed || m.Strategy != tc.strategy || m.Guarantee != "g" || m.Detail == "" {
					t.Fatalf("mismatch %+v", m)
				}
				if tc.err != nil && (m.Held || !strings.Contains(m.Detail, "broke")) {
					t.Fatalf("mismatch of a broken scenario %+v", m)
				}
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
		{"driver", Options{Driver: "oracle"}, "--driver"},
		{"postgres without dsn", Options{Driver: "postgres"}, "--dsn"},
		{"mysql without dsn", Options{Driver: "mysql"}, "--dsn"},
		{"format", Options{Driver: "sqlite", Format: "csv"}, "--format"},
		{"strategy", Options{Driver: "sqlite", Strategies: []string{"stateless", "jwt_blacklist"}}, "jwt_blacklist"},
		{"no strategy", Options{Driver: "sqlite", Strategies: []string{" "}}, "--strategies"},
		{"requests", Options{Driver: "sqlite", Requests: -1}, "--requests"},
		{"clients", Options{Driver: "sqlite", Clients: 1001}, "--clients"},
		{"duration", Options{Driver: "sqlite", Duration: -time.Second}, "--duration"},
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
