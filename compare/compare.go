// Package compare measures, side by side, what every revocation strategy
// guarantees and what it costs. It exists so that the comparison
// table is produced by running the server rather than written by hand: the
// `authserver compare` command prints it, and this package's test runs the
// same comparison and fails when a strategy does not do what it claims.
//
// For each strategy, Measure builds a fresh database (SQLite: a new file;
// MySQL: a new database <dbname>_cmp_<strategy> on the server of the DSN,
// dropped afterwards) and, on it, in-process servers assembled by
// authserver.New and served by httptest on real loopback HTTP: one with
// the built-in defaults (the verification cache on), one with
// cache.enabled=false, and one per setting a scenario needs (devices.max,
// jwt.refresh_supersedes_access). They share the database, the secret and
// a clock that stands still until a scenario moves it. Every request goes
// through the HTTP API with a real http.Client.
//
// # Guarantees
//
// The guarantee rows are the cases of package scenario: the one table of
// scenarios and expected outcomes that the routes test suite runs too.
// Each row names the claim under which a strategy promises it: a
// capability that GET /api/v1/strategy reports, or a property of the
// strategy's design that the capabilities do not express (single_login,
// multiple_logins). Every scenario runs for every strategy, whatever it
// claims, and observes an outcome ("revoked at once", "valid until
// expiry", "501 not_supported", ...). A cell is
//
//	pass  the outcome shows the guarantee
//	FAIL  the strategy claims it and the outcome does not show it, or the
//	      scenario broke (a server error, an answer that fits no outcome)
//	n/a   the strategy does not claim it, and indeed it does not hold
//
// A strategy that does not claim a guarantee but shows it is a mismatch too
// (except for rows about not revoking too much), and so is an outcome that
// differs from the one the scenario table expects. Every FAIL and every
// mismatch is listed in mismatches, and Run then returns an error wrapping
// ErrMismatch, so the command exits non-zero, exactly when the routes test
// suite fails.
//
// # Costs
//
// Measured in the same run. The verify rows come twice, cache on (the
// default) and cache off, each on its own server:
//
//   - queries_per_verify: SQL statements (SELECT, INSERT, UPDATE, DELETE;
//     not BEGIN/COMMIT), counted by GORM callbacks on the server's
//     database handle during the timed sequential verify requests, divided
//     by their number. Statements of the server's background work (the
//     outbox feed, the last-seen writer, the prune; models.Background) are
//     not counted.
//   - verify_median_us, verify_p99_us: client-side latency of GET
//     /api/v1/auth/verify with a valid token, over Options.Requests
//     sequential requests on one keep-alive connection per server, after a
//     warm-up. The servers take turns, 10 requests each, so that whatever
//     else the machine does weighs on all of them alike.
//   - verify_rps: verifications answered per second with Options.Clients
//     concurrent clients, each on its own keep-alive connection, verifying
//     the token of a user of its own as fast as the answers come, for
//     Options.Duration per server in all; the servers take turns in slices
//     of at most 200ms. The load generator runs in the same process.
//   - *_vs_stateless: the value divided by the stateless strategy's under
//     the same cache setting, measured in the same run (stateless is
//     measured for this even when it is not among the strategies compared).
//   - bytes_per_session: how much the user's rows in users, sessions and
//     refresh_tokens grow when the user logs in for the first time (the
//     JSON device map and state on the user row, the session row, the
//     refresh-token row). Strings and byte columns count their length,
//     integers and times 8 bytes, NULL 0; no row, page or index overhead.
//
// Ids of the cache-off rows end in _cache_off.
//
// # Invalidation
//
// For each revocation kind (logout, logout-all, logout-others, device
// revocation, password change, password reset, account deletion), and for
// a login and a refresh, which change the verification state under some
// strategies: the INSERT, UPDATE and DELETE statements of that one request
// (writes; background work excluded) and the rows it wrote to the
// invalidation outbox (messages: models.Invalidation rows; with Redis
// configured each becomes one PUBLISH). Each is measured on a fresh user
// signed in on two devices, on the server of the defaults (the refresh
// with jwt.refresh_supersedes_access=true on that setting's server). null
// means the strategy answered 501 not_supported.
//
// bcrypt runs at cost 4 and the rate limits and brute-force delays are
// off, to keep the run short; verification touches none of them.
//
// # JSON
//
// --format json writes one Report object; its fields and their json tags
// are the schema (version 2):
//
//	{
//	  "version": 2,
//	  "driver": "sqlite",
//	  "generated_at": "2026-01-02T15:04:05Z",
//	  "go": "go1.26.8",
//	  "cpus": 2,
//	  "requests": 2000,
//	  "clients": 16,
//	  "duration_ms": 1000,
//	  "strategies": ["stateless", ...],
//	  "guarantees": [{"id": "logout_all", "title": "...", "claim": "logout_all_devices",
//	                  "setting": "", "cells": {"stateless": "n/a", ...},
//	                  "outcomes": {"stateless": "501 not_supported", ...}}, ...],
//	  "costs": [{"id": "queries_per_verify", "title": "...", "unit": "queries", "cache": "on",
//	             "values": {"stateless": 0, ...}}, ...],
//	  "invalidation": [{"id": "logout", "title": "logout", "request": "POST /api/v1/auth/logout",
//	                    "setting": "", "writes": {"stateless": 2, ...},
//	                    "messages": {"stateless": 0, ...}}, ...],
//	  "verify_reads": {"stateless": [], "session_table": ["users", "sessions"], ...},
//	  "mismatches": [{"strategy": "...", "guarantee": "...", "claimed": true,
//	                  "held": false, "detail": "..."}],
//	  "notes": ["..."]
//	}
//
// Changes from version 1: guarantees gained setting and outcomes (the
// observed outcome per strategy, in the words of the scenario table) and
// the rows logout_others, login_same_instant_as_logout_all,
// last_seen_throttled, device_limit_evict_oldest,
// refresh_supersedes_access_off and refresh_supersedes_access_on; costs
// gained cache ("on", "off", or "" for a row the cache does not concern),
// the _cache_off rows, verify_p99_vs_stateless, verify_rps and
// verify_rps_vs_stateless; writes_per_login moved to invalidation (the
// login row's writes); invalidation, verify_reads (the tables a
// verification reads with the cache off), cpus, clients and duration_ms
// are new.
//
// Rows come in a fixed order and ids never change meaning within a version;
// mismatches is [] when there are none.
package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/scenario"
	"github.com/revocable/authserver/strategy"
)

// ErrMismatch is what Run returns (wrapped) when a guarantee cell is FAIL,
// a strategy passes a scenario it does not claim, or an outcome differs
// from the scenario table.
var ErrMismatch = errors.New("the strategies do not do what they claim")

// Formats lists the accepted output formats.
var Formats = []string{"table", "markdown", "json", "html"}

// The defaults of the timing options.
const (
	DefaultRequests = 2000
	DefaultClients  = 16
	DefaultDuration = time.Second
)

// SchemaVersion is the version of the JSON schema (see the package doc).
const SchemaVersion = 2

// Options are the compare command's flags.
type Options struct {
	// Driver is sqlite, mysql or postgres.
	Driver string
	// DSN is where the databases go. SQLite: empty means a temporary
	// directory, removed afterwards; a path foo.db means the files
	// foo_cmp_<strategy>.db next to it, removed afterwards. MySQL: required;
	// its database name is the prefix of the per-strategy databases
	// <dbname>_cmp_<strategy>, created fresh on that server and dropped
	// afterwards.
	DSN string
	// Strategies to compare; empty means all. They are always reported in
	// strategy.Names() order.
	Strategies []string
	// Format is table, markdown, json or html.
	Format string
	// Requests is how many sequential verify requests time each server.
	Requests int
	// Clients is how many concurrent clients load each server for the
	// throughput row, for Duration in all.
	Clients  int
	Duration time.Duration
	// Out receives the report; Progress (stderr) the progress lines.
	Out      io.Writer
	Progress io.Writer

	// adjustClaims lets the test make a strategy claim what it does not.
	adjustClaims func(strategy string, claims map[string]bool)
}

// Cell is one guarantee cell.
type Cell string

const (
	Pass Cell = "pass"
	Fail Cell = "FAIL"
	NA   Cell = "n/a"
)

// Report is the result of a comparison, and the --format json schema.
type Report struct {
	Version      int                 `json:"version"`
	Driver       string              `json:"driver"`
	GeneratedAt  time.Time           `json:"generated_at"`
	Go           string              `json:"go"`
	CPUs         int                 `json:"cpus"`
	Requests     int                 `json:"requests"`
	Clients      int                 `json:"clients"`
	DurationMS   int64               `json:"duration_ms"`
	Strategies   []string            `json:"strategies"`
	Guarantees   []GuaranteeRow      `json:"guarantees"`
	Costs        []CostRow           `json:"costs"`
	Invalidation []InvalidationRow   `json:"invalidation"`
	VerifyReads  map[string][]string `json:"verify_reads"`
	Mismatches   []Mismatch          `json:"mismatches"`
	Notes        []string            `json:"notes"`
}

// GuaranteeRow is one guarantee: a case of the scenario table, with a cell
// and the observed outcome per strategy.
type GuaranteeRow struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Claim is the capability or property under which a strategy promises
	// this guarantee; "" means every strategy does.
	Claim string `json:"claim"`
	// Setting is the configuration the scenario ran under ("" for the
	// built-in defaults).
	Setting  string            `json:"setting"`
	Cells    map[string]Cell   `json:"cells"`
	Outcomes map[string]string `json:"outcomes"`
}

// CostRow is one measured cost: a value per strategy.
type CostRow struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	// Cache is "on" or "off" for the verify rows, "" for the others.
	Cache  string             `json:"cache"`
	Values map[string]float64 `json:"values"`
}

// InvalidationRow is what one kind of request writes, per strategy; nil
// where the strategy answers 501 not_supported.
type InvalidationRow struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Request string `json:"request"`
	Setting string `json:"setting"`
	// Writes counts INSERT, UPDATE and DELETE statements; Messages the
	// invalidation outbox rows (one Redis PUBLISH each, with Redis).
	Writes   map[string]*int64 `json:"writes"`
	Messages map[string]*int64 `json:"messages"`
}

// Mismatch is a guarantee whose scenario disagrees with the strategy's
// claims (claimed but not held, or held but not claimed), with the
// scenario table, or broke.
type Mismatch struct {
	Strategy  string `json:"strategy"`
	Guarantee string `json:"guarantee"`
	Claimed   bool   `json:"claimed"`
	Held      bool   `json:"held"`
	Detail    string `json:"detail"`
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s / %s: %s", m.Strategy, m.Guarantee, m.Detail)
}

// Err is nil when every claim held, and wraps ErrMismatch otherwise.
func (r *Report) Err() error {
	if len(r.Mismatches) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d mismatch(es), first: %s", ErrMismatch, len(r.Mismatches), r.Mismatches[0])
}

// Run compares the strategies, writes the report to o.Out in o.Format and
// returns an error wrapping ErrMismatch if any strategy failed a claim.
func Run(ctx context.Context, o Options) error {
	o, err := o.normalize()
	if err != nil {
		return err
	}
	r, err := Measure(ctx, o)
	if err != nil {
		return err
	}
	if err := r.Write(o.Out, o.Format); err != nil {
		return err
	}
	return r.Err()
}

// normalize checks the options and fills in the defaults.
func (o Options) normalize() (Options, error) {
	if !slices.Contains(models.Drivers, o.Driver) {
		return o, fmt.Errorf("unknown --driver %q (valid: %s)", o.Driver, strings.Join(models.Drivers, ", "))
	}
	if o.Driver == "mysql" && o.DSN == "" {
		return o, errors.New("--driver mysql needs --dsn, e.g. 'root@tcp(127.0.0.1:3306)/test'")
	}
	if o.Driver == "postgres" && o.DSN == "" {
		return o, errors.New("--driver postgres needs --dsn, e.g. 'postgres://root@127.0.0.1:5432/test'")
	}
	if o.Format == "" {
		o.Format = "table"
	}
	if !slices.Contains(Formats, o.Format) {
		return o, fmt.Errorf("unknown --format %q (valid: %s)", o.Format, strings.Join(Formats, ", "))
	}
	if o.Requests == 0 {
		o.Requests = DefaultRequests
	}
	if o.Requests < 1 || o.Requests > 1_000_000 {
		return o, fmt.Errorf("--requests must be between 1 and 1000000, got %d", o.Requests)
	}
	if o.Clients == 0 {
		o.Clients = DefaultClients
	}
	if o.Clients < 1 || o.Clients > 1000 {
		return o, fmt.Errorf("--clients must be between 1 and 1000, got %d", o.Clients)
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Duration < time.Millisecond || o.Duration > 10*time.Minute {
		return o, fmt.Errorf("--duration must be between 1ms and 10m, got %s", o.Duration)
	}
	names := strategy.Names()
	if len(o.Strategies) == 0 {
		o.Strategies = names
	} else {
		want := map[string]bool{}
		for _, s := range o.Strategies {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !slices.Contains(names, s) {
				return o, fmt.Errorf("unknown strategy %q in --strategies (valid: %s)", s, strings.Join(names, ", "))
			}
			want[s] = true
		}
		if len(want) == 0 {
			return o, errors.New("--strategies names no strategy")
		}
		o.Strategies = slices.DeleteFunc(slices.Clone(names), func(s string) bool { return !want[s] })
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return o, nil
}

// baseline is the strategy every ratio is taken to.
const baseline = "stateless"

// Measure runs the comparison and returns its report. A FAIL or mismatch is
// in the report (see Report.Err), not an error: errors are for a comparison
// that could not run at all.
func Measure(ctx context.Context, o Options) (*Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	// The router logs its routes in gin's debug mode.
	gin.SetMode(gin.ReleaseMode)

	prog := newProgress(o.Progress)
	defer prog.done()
	dbs, err := newDatabases(ctx, o.Driver, o.DSN)
	if err != nil {
		return nil, err
	}
	defer dbs.close()
	// Every server stays up until the end: the timing takes turns between
	// them. Servers stop before their databases go.
	var cleanups []func()
	defer func() {
		for _, c := range slices.Backward(cleanups) {
			c()
		}
	}()

	names := o.Strategies
	hidden := !slices.Contains(names, baseline)
	if hidden {
		names = append([]string{baseline}, names...)
	}
	var (
		strats []*strat
		ts     []timed
	)
	for _, name := range names {
		what := "starting its servers on a fresh database"
		if hidden && name == baseline {
			what = "starting its servers (the baseline of the ratios only)"
		}
		prog.say("%s: %s", name, what)
		db, cleanup, err := dbs.open(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cleanups = append(cleanups, cleanup)
		s := newStrat(name, db, o.adjustClaims)
		s.hidden = hidden && name == baseline
		strats = append(strats, s)
		on, err := s.server(ctx, "", nil, &cleanups)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		off, err := s.server(ctx, settingCacheOff, func(c *config.Config) { c.Cache.Enabled = false }, &cleanups)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		prog.say("%s: signing in %d users", name, o.Clients)
		if err := prepareLoad(ctx, s, on, o.Clients); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ts = append(ts, timed{s, on}, timed{s, off})
	}
	if err := timeVerify(ctx, ts, o.Requests, prog); err != nil {
		return nil, err
	}
	if err := throughput(ctx, ts, o.Clients, o.Duration, prog); err != nil {
		return nil, err
	}
	for _, s := range strats {
		if s.hidden {
			continue
		}
		prog.say("%s: measuring the invalidation cost of each revocation", s.name)
		if err := measureInvalidation(ctx, s, &cleanups); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if err := runGuarantees(ctx, s, prog, &cleanups); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return report(o, strats), nil
}

// costMetric is a verify cost, reported once per cache setting.
type costMetric struct {
	id, title, unit string
	decimals        int
	value           func(c, base verifyCost) float64
}

func ratio(v, base float64) float64 {
	if base <= 0 {
		return 0
	}
	return v / base
}

func costMetrics(clients int) []costMetric {
	return []costMetric{
		{"queries_per_verify", "DB queries per verification", "queries", 2, func(c, _ verifyCost) float64 { return c.queries }},
		{"verify_median_us", "verify latency, median", "µs", 1, func(c, _ verifyCost) float64 { return c.medianUS }},
		{"verify_p99_us", "verify latency, p99", "µs", 1, func(c, _ verifyCost) float64 { return c.p99US }},
		{"verify_median_vs_stateless", "verify median vs stateless", "×", 2, func(c, b verifyCost) float64 { return ratio(c.medianUS, b.medianUS) }},
		{"verify_p99_vs_stateless", "verify p99 vs stateless", "×", 2, func(c, b verifyCost) float64 { return ratio(c.p99US, b.p99US) }},
		{"verify_rps", fmt.Sprintf("verify throughput, %d concurrent clients", clients), "req/s", 0, func(c, _ verifyCost) float64 { return c.rps }},
		{"verify_rps_vs_stateless", "verify throughput vs stateless", "×", 2, func(c, b verifyCost) float64 { return ratio(c.rps, b.rps) }},
	}
}

// report assembles the Report from the measured strategies.
func report(o Options, strats []*strat) *Report {
	rep := &Report{
		Version: SchemaVersion, Driver: o.Driver, GeneratedAt: time.Now().UTC().Truncate(time.Second),
		Go: runtime.Version(), CPUs: runtime.NumCPU(), Requests: o.Requests, Clients: o.Clients,
		DurationMS: o.Duration.Milliseconds(), Strategies: o.Strategies,
		VerifyReads: map[string][]string{}, Mismatches: []Mismatch{}, Notes: notes(o),
	}
	var base *strat
	var shown []*strat
	for _, s := range strats {
		if s.name == baseline {
			base = s
		}
		if !s.hidden {
			shown = append(shown, s)
		}
	}
	for _, c := range scenario.All() {
		row := GuaranteeRow{ID: c.ID, Title: c.Title, Claim: c.Claim, Setting: c.Setting, Cells: map[string]Cell{}, Outcomes: map[string]string{}}
		for _, s := range shown {
			row.Cells[s.name], row.Outcomes[s.name] = s.cells[c.ID], s.outcomes[c.ID]
		}
		rep.Guarantees = append(rep.Guarantees, row)
	}
	for _, m := range costMetrics(o.Clients) {
		for _, setting := range []string{"", settingCacheOff} {
			row := CostRow{ID: m.id, Title: m.title + ", cache on", Unit: m.unit, Cache: "on", Values: map[string]float64{}}
			if setting == settingCacheOff {
				row = CostRow{ID: m.id + "_cache_off", Title: m.title + ", cache off", Unit: m.unit, Cache: "off", Values: map[string]float64{}}
			}
			for _, s := range shown {
				row.Values[s.name] = round(m.value(s.servers[setting].verify, base.servers[setting].verify), m.decimals)
			}
			rep.Costs = append(rep.Costs, row)
		}
	}
	bytesRow := CostRow{ID: "bytes_per_session", Title: "stored bytes per active session", Unit: "bytes", Values: map[string]float64{}}
	for _, s := range shown {
		bytesRow.Values[s.name] = s.bytesPerSession
		rep.VerifyReads[s.name] = append([]string{}, s.reads...)
		rep.Mismatches = append(rep.Mismatches, s.mismatches...)
	}
	rep.Costs = append(rep.Costs, bytesRow)
	for _, k := range kinds() {
		row := InvalidationRow{ID: k.id, Title: k.title, Request: k.request, Setting: k.setting,
			Writes: map[string]*int64{}, Messages: map[string]*int64{}}
		for _, s := range shown {
			c := s.invalidation[k.id]
			if c.supported {
				row.Writes[s.name], row.Messages[s.name] = &c.writes, &c.messages
			} else {
				row.Writes[s.name], row.Messages[s.name] = nil, nil
			}
		}
		rep.Invalidation = append(rep.Invalidation, row)
	}
	return rep
}

// notes explain how the numbers were made; every format prints them.
func notes(o Options) []string {
	return []string{
		"pass: the scenario showed the guarantee. n/a: the strategy does not claim it (GET /api/v1/strategy) and it does not hold. FAIL: claimed but not shown, or the scenario broke. Every scenario runs for every strategy; rejected means GET /api/v1/auth/verify answered 401. The scenarios and the outcome expected of each strategy are one table (package scenario), which the routes test suite runs too.",
		"Built-in defaults, except bcrypt cost 4 and no rate limits or brute-force delays, to keep the run short (verification touches none of them); a row's setting (devices.max, jwt.refresh_supersedes_access) runs on a server of its own on the same database.",
		"DB queries: SQL statements (not BEGIN/COMMIT) counted by GORM callbacks during the timed verifications, background work (outbox feed, last-seen writer, prune) excluded. Cache on: the default, every instance keeps its users' verification state, kept exact by the invalidation outbox; cache off: cache.enabled=false.",
		fmt.Sprintf("Latency: client-side GET /api/v1/auth/verify with a valid token, %d sequential requests per server on one loopback keep-alive connection after a warm-up, the servers taking turns 10 requests at a time. Throughput: %d concurrent clients, each on its own keep-alive connection with a user of its own, for %s per server in slices of at most 200ms, the servers taking turns; the load generator runs in the same process. Ratios are to stateless under the same cache setting, measured in the same run.", o.Requests, o.Clients, o.Duration),
		"Stored bytes: growth of the user's users, sessions and refresh_tokens rows at their first login; strings and bytes by length, integers and times 8, NULL 0; no row, page or index overhead; each refresh adds one more refresh_tokens row.",
		"Invalidation: for one request on a fresh user signed in on two devices, the INSERT/UPDATE/DELETE statements it ran (audit event included) and the rows it wrote to the invalidation outbox; with Redis configured each outbox row is also one PUBLISH. 501: the strategy does not support it.",
	}
}
