// Package compare measures, side by side, what every revocation strategy
// guarantees and what it costs. It exists so that the README's comparison
// table is produced by running the server rather than written by hand: the
// `authserver compare` command prints it, and this package's test runs the
// same comparison and fails when a strategy does not do what it claims.
//
// For each strategy, Measure builds a fresh database (SQLite: a new file;
// MySQL: a new database <dbname>_cmp_<strategy> on the server of the DSN,
// dropped afterwards), the built-in default configuration with that
// strategy, and an in-process server (routes.New on httptest.NewServer) on
// real loopback HTTP. Every scenario then runs through the HTTP API with a
// real http.Client; "rejected" always means that GET /api/v1/auth/verify
// answered 401.
//
// # Guarantees
//
// Each guarantee row names the claim under which a strategy promises it: a
// capability that GET /api/v1/strategy reports, or a property of the
// strategy's design that the capabilities do not express (single_login,
// multiple_logins). Every scenario runs for every strategy, whatever it
// claims. A cell is
//
//	pass  the scenario showed the guarantee
//	FAIL  the strategy claims it and the scenario did not show it, or the
//	      scenario broke (a server error, an unexpected answer)
//	n/a   the strategy does not claim it, and indeed it does not hold
//
// A strategy that does not claim a guarantee but passes its scenario shows
// "pass" and is a mismatch too (except for rows about not revoking too
// much). Every FAIL and every mismatch is listed in mismatches, and Run then
// returns an error wrapping ErrMismatch, so the command exits non-zero.
//
// # Costs
//
// Measured in the same run, on the same server:
//
//   - queries_per_verify: SQL statements (SELECT, INSERT, UPDATE, DELETE;
//     not BEGIN/COMMIT), counted by GORM callbacks on the server's database,
//     during the timed verify requests, divided by their number.
//   - writes_per_login: INSERT, UPDATE and DELETE statements of one login of
//     a user who already has one active login.
//   - bytes_per_session: how much the user's rows in users, sessions and
//     refresh_tokens grow when the user logs in for the first time (the
//     JSON device map and state on the user row, the session row, the
//     refresh-token row). Strings and byte columns count their length,
//     integers and times 8 bytes, NULL 0; no row, page or index overhead.
//     Each refresh adds another refresh_tokens row, not counted here.
//   - verify_median_us, verify_p99_us: client-side latency of GET
//     /api/v1/auth/verify with a valid token, over Options.Requests
//     sequential requests on one keep-alive connection per server, after a
//     warm-up. The strategies take turns, 10 requests each, so that
//     whatever else the machine does weighs on all of them alike.
//   - verify_median_vs_stateless: the median divided by the stateless
//     strategy's, measured in the same run (stateless is measured for this
//     even when it is not among the strategies compared).
//
// bcrypt runs at cost 4 to keep the run short; verification never runs
// bcrypt, so this does not change any verify cost.
//
// # JSON
//
// --format json writes one Report object; its fields and their json tags
// are the schema (version 1):
//
//	{
//	  "version": 1,
//	  "driver": "sqlite",
//	  "generated_at": "2026-01-02T15:04:05Z",
//	  "go": "go1.26.8",
//	  "requests": 2000,
//	  "strategies": ["stateless", ...],
//	  "guarantees": [{"id": "logout_all", "title": "...", "claim": "logout_all_devices",
//	                  "cells": {"stateless": "n/a", ...}}, ...],
//	  "costs": [{"id": "queries_per_verify", "title": "...", "unit": "queries",
//	             "values": {"stateless": 0, ...}}, ...],
//	  "mismatches": [{"strategy": "...", "guarantee": "...", "claimed": true,
//	                  "held": false, "detail": "..."}],
//	  "notes": ["..."]
//	}
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

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// ErrMismatch is what Run returns (wrapped) when a guarantee cell is FAIL
// or a strategy passes a scenario it does not claim.
var ErrMismatch = errors.New("the strategies do not do what they claim")

// Formats lists the accepted output formats.
var Formats = []string{"table", "markdown", "json"}

// DefaultRequests is how many verify requests time each strategy.
const DefaultRequests = 2000

// Options are the compare command's flags.
type Options struct {
	// Driver is sqlite or mysql.
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
	// Format is table, markdown or json.
	Format string
	// Requests is how many verify requests time each strategy.
	Requests int
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
	Version     int            `json:"version"`
	Driver      string         `json:"driver"`
	GeneratedAt time.Time      `json:"generated_at"`
	Go          string         `json:"go"`
	Requests    int            `json:"requests"`
	Strategies  []string       `json:"strategies"`
	Guarantees  []GuaranteeRow `json:"guarantees"`
	Costs       []CostRow      `json:"costs"`
	Mismatches  []Mismatch     `json:"mismatches"`
	Notes       []string       `json:"notes"`
}

// GuaranteeRow is one guarantee: a cell per strategy.
type GuaranteeRow struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Claim is the capability or property under which a strategy promises
	// this guarantee; "" means every strategy does.
	Claim string          `json:"claim"`
	Cells map[string]Cell `json:"cells"`
}

// CostRow is one measured cost: a value per strategy.
type CostRow struct {
	ID     string             `json:"id"`
	Title  string             `json:"title"`
	Unit   string             `json:"unit"`
	Values map[string]float64 `json:"values"`
}

// Mismatch is a guarantee whose scenario disagrees with the strategy's
// claims: claimed but not held (the cell is FAIL), or held but not claimed.
type Mismatch struct {
	Strategy  string `json:"strategy"`
	Guarantee string `json:"guarantee"`
	Claimed   bool   `json:"claimed"`
	Held      bool   `json:"held"`
	Detail    string `json:"detail"`
}

func (m Mismatch) String() string {
	claim := "claimed but not held"
	if !m.Claimed {
		claim = "not claimed"
		if m.Held {
			claim = "held but not claimed"
		}
	}
	return fmt.Sprintf("%s / %s: %s: %s", m.Strategy, m.Guarantee, claim, m.Detail)
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

// baseline is the strategy every latency is compared with.
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

	rep := &Report{
		Version: 1, Driver: o.Driver, GeneratedAt: time.Now().UTC().Truncate(time.Second),
		Go: runtime.Version(), Requests: o.Requests, Strategies: o.Strategies,
		Mismatches: []Mismatch{}, Notes: notes(o),
	}
	for _, g := range guarantees {
		rep.Guarantees = append(rep.Guarantees, GuaranteeRow{ID: g.id, Title: g.title, Claim: g.claim, Cells: map[string]Cell{}})
	}
	for _, c := range costRows {
		rep.Costs = append(rep.Costs, CostRow{ID: c.id, Title: c.title, Unit: c.unit, Values: map[string]float64{}})
	}

	var runs []*run
	if !slices.Contains(o.Strategies, baseline) {
		runs = append(runs, &run{name: baseline, hidden: true})
	}
	for _, name := range o.Strategies {
		runs = append(runs, &run{name: name})
	}
	// Every server stays up until the end: the verify timing takes turns
	// between them.
	var cleanups []func()
	defer func() {
		for _, c := range slices.Backward(cleanups) {
			c()
		}
	}()
	for _, r := range runs {
		what := "starting the server on a fresh database"
		if r.hidden {
			what = "starting the server (the latency baseline only)"
		}
		prog.say("%s: %s", r.name, what)
		if err := start(ctx, dbs, o, r, &cleanups); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		prog.say("%s: measuring a login", r.name)
		if err := measureLogin(ctx, r); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
	}
	if err := timeVerify(ctx, runs, o.Requests, prog); err != nil {
		return nil, err
	}
	var base float64
	for _, r := range runs {
		if r.name == baseline {
			base = r.costs.medianUS
		}
	}
	for _, r := range runs {
		if r.hidden {
			continue
		}
		if err := runScenarios(ctx, r, prog); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		for i := range guarantees {
			rep.Guarantees[i].Cells[r.name] = r.cells[i]
		}
		rep.Mismatches = append(rep.Mismatches, r.mismatches...)
		if base > 0 {
			r.costs.vsBaseline = r.costs.medianUS / base
		}
		for i, row := range costRows {
			rep.Costs[i].Values[r.name] = round(row.value(r.costs), row.decimals)
		}
	}
	return rep, nil
}

// notes explain how the numbers were made; every format prints them.
func notes(o Options) []string {
	return []string{
		"bcrypt cost is lowered to 4 for speed; verification never runs bcrypt, so this does not change any verify cost. Otherwise the built-in defaults, with reset.expose_token on so that the reset scenario can read its token.",
		"pass: the scenario showed the guarantee. n/a: the strategy does not claim it (GET /api/v1/strategy) and it does not hold. FAIL: claimed but not shown, or the scenario broke. Every scenario runs for every strategy; rejected means GET /api/v1/auth/verify answered 401.",
		"device limit: run on a second server on the same database with devices.max = 2 (on_limit reject). Refresh reuse: the server's clock is moved past jwt.refresh_reuse_grace between the two uses.",
		"DB queries: SQL statements (not BEGIN/COMMIT) counted by GORM callbacks. Writes per login: INSERT/UPDATE/DELETE of a login of a user who already has one active login.",
		"Stored bytes: growth of the user's users, sessions and refresh_tokens rows at their first login; strings and bytes by length, integers and times 8, NULL 0; no row, page or index overhead; each refresh adds one more refresh_tokens row.",
		fmt.Sprintf("Latency: client-side GET /api/v1/auth/verify with a valid token, %d sequential requests per strategy on one loopback keep-alive connection after a warm-up, the strategies taking turns 10 requests at a time; ratio to stateless measured in the same run.", o.Requests),
	}
}
