package compare

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// counter counts the SQL statements run on a database, through GORM
// callbacks registered after each of GORM's own.
type counter struct {
	statements atomic.Int64
	writes     atomic.Int64
}

// Statements of the server's background work (models.Background: the
// outbox feed, the prune, the last-seen writer) are not counted: they do
// not belong to any request.
func (c *counter) register(db *gorm.DB) error {
	read := func(tx *gorm.DB) {
		if !models.IsBackground(tx.Statement.Context) {
			c.statements.Add(1)
		}
	}
	write := func(tx *gorm.DB) {
		if !models.IsBackground(tx.Statement.Context) {
			c.statements.Add(1)
			c.writes.Add(1)
		}
	}
	cb := db.Callback()
	for _, r := range []struct {
		name string
		err  error
	}{
		{"query", cb.Query().After("gorm:query").Register("compare:count_query", read)},
		{"row", cb.Row().After("gorm:row").Register("compare:count_row", read)},
		// Raw is db.Exec: statements such as INSERT ... ON DUPLICATE KEY.
		{"raw", cb.Raw().After("gorm:raw").Register("compare:count_raw", write)},
		{"create", cb.Create().After("gorm:create").Register("compare:count_create", write)},
		{"update", cb.Update().After("gorm:update").Register("compare:count_update", write)},
		{"delete", cb.Delete().After("gorm:delete").Register("compare:count_delete", write)},
	} {
		if r.err != nil {
			return fmt.Errorf("register the %s statement counter: %w", r.name, r.err)
		}
	}
	return nil
}

// costs are one strategy's measurements.
type costs struct {
	queriesPerVerify float64
	writesPerLogin   float64
	bytesPerSession  float64
	medianUS, p99US  float64
	vsBaseline       float64
}

// costRows is the costs table, in report order.
var costRows = []struct {
	id, title, unit string
	decimals        int
	value           func(costs) float64
}{
	{"queries_per_verify", "DB queries per authenticated request", "queries", 2, func(c costs) float64 { return c.queriesPerVerify }},
	{"writes_per_login", "DB writes per login", "writes", 2, func(c costs) float64 { return c.writesPerLogin }},
	{"bytes_per_session", "stored bytes per active session", "bytes", 0, func(c costs) float64 { return c.bytesPerSession }},
	{"verify_median_us", "verify latency, median", "µs", 1, func(c costs) float64 { return c.medianUS }},
	{"verify_p99_us", "verify latency, p99", "µs", 1, func(c costs) float64 { return c.p99US }},
	{"verify_median_vs_stateless", "verify median vs stateless", "×", 2, func(c costs) float64 { return c.vsBaseline }},
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// run is one strategy under comparison: its server, its login for the
// latency measurement and its results.
type run struct {
	name string
	// hidden is the stateless baseline measured only for the latency
	// ratio, when stateless is not among the strategies compared.
	hidden     bool
	e          *env
	login      *login
	costs      costs
	latencies  []time.Duration
	cells      []Cell
	mismatches []Mismatch
}

// start opens the strategy's fresh database and starts its servers; the
// cleanup it registers stops them and removes the database.
func start(ctx context.Context, dbs *databases, o Options, r *run, cleanups *[]func()) error {
	db, cleanup, err := dbs.open(ctx, r.name)
	if err != nil {
		return err
	}
	*cleanups = append(*cleanups, cleanup)
	e, stop, err := startEnv(ctx, db, r.name)
	if err != nil {
		return err
	}
	*cleanups = append(*cleanups, stop)
	if o.adjustClaims != nil {
		o.adjustClaims(r.name, e.claims)
	}
	r.e = e
	return nil
}

// measureLogin signs a fresh user in twice: the first login gives the
// stored bytes per session, the second the writes per login and the token
// whose verification is timed.
func measureLogin(ctx context.Context, r *run) error {
	e := r.e
	p := &probe{e: e, c: e.main}
	email, id, err := p.user(ctx)
	if err != nil {
		return err
	}
	uid, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("user id %q: %w", id, err)
	}
	before, err := storedBytes(ctx, e.db, uid)
	if err != nil {
		return err
	}
	if _, err := p.login(ctx, email, password, "phone"); err != nil {
		return err
	}
	after, err := storedBytes(ctx, e.db, uid)
	if err != nil {
		return err
	}
	r.costs.bytesPerSession = float64(after - before)

	writes := e.count.writes.Load()
	if r.login, err = p.login(ctx, email, password, "laptop"); err != nil {
		return err
	}
	r.costs.writesPerLogin = float64(e.count.writes.Load() - writes)
	return nil
}

// Verify requests are timed in rounds of batch requests per strategy, the
// strategies taking turns, so that whatever else the machine does at the
// time weighs on every strategy alike.
const (
	warmup = 50 // at most; a tenth of the timed requests when fewer
	batch  = 10
)

// timeVerify sends n timed GET /api/v1/auth/verify requests per strategy,
// after a warm-up, and counts the statements each server ran for them.
func timeVerify(ctx context.Context, runs []*run, n int, prog *progress) error {
	type timer struct {
		r    *run
		once func() error
	}
	timers := make([]timer, len(runs))
	for i, r := range runs {
		req, err := http.NewRequestWithContext(ctx, "GET", r.e.main.base+"/api/v1/auth/verify", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+r.login.access)
		req.Header.Set("User-Agent", userAgent)
		hc := r.e.main.hc
		timers[i] = timer{r: r, once: func() error {
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: verify with a valid token answered %d", r.name, resp.StatusCode)
			}
			return nil
		}}
	}
	prog.say("warming up")
	for _, t := range timers {
		for range min(warmup, max(n/10, 1)) {
			if err := t.once(); err != nil {
				return err
			}
		}
	}
	start := make([]int64, len(timers))
	for i, t := range timers {
		start[i] = t.r.e.count.statements.Load()
		t.r.latencies = make([]time.Duration, 0, n)
	}
	prog.say("timing %d verify requests per strategy, taking turns", n)
	for done := 0; done < n; done += batch {
		prog.live("timing verify: %d of %d requests per strategy", done, n)
		for _, t := range timers {
			for range min(batch, n-done) {
				began := time.Now()
				if err := t.once(); err != nil {
					return err
				}
				t.r.latencies = append(t.r.latencies, time.Since(began))
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for i, t := range timers {
		c := &t.r.costs
		c.queriesPerVerify = float64(t.r.e.count.statements.Load()-start[i]) / float64(n)
		c.medianUS = micros(percentile(t.r.latencies, 0.50))
		c.p99US = micros(percentile(t.r.latencies, 0.99))
	}
	return nil
}

// runScenarios runs every guarantee's scenario and judges it against the
// strategy's claims.
func runScenarios(ctx context.Context, r *run, prog *progress) error {
	for _, g := range guarantees {
		prog.say("%s: %s", r.name, g.title)
		claimed, known := true, true
		if g.claim != "" {
			claimed, known = r.e.claims[g.claim]
		}
		if !known {
			return fmt.Errorf("GET /api/v1/strategy does not report the capability %q that %q depends on", g.claim, g.id)
		}
		p := &probe{e: r.e, c: r.e.main}
		if g.limited {
			p.c = r.e.limited
		}
		err := g.run(ctx, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cell, m := judge(g, r.name, claimed, err)
		r.cells = append(r.cells, cell)
		if m != nil {
			r.mismatches = append(r.mismatches, *m)
		}
	}
	return nil
}

// percentile is the nearest-rank percentile of the latencies.
func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// storedBytes sums the logical size of the user's rows in users, sessions
// and refresh_tokens.
func storedBytes(ctx context.Context, db *gorm.DB, uid uint64) (int, error) {
	var u models.User
	if err := db.WithContext(ctx).Take(&u, "id = ?", uid).Error; err != nil {
		return 0, fmt.Errorf("load user: %w", err)
	}
	var sessions []models.Session
	if err := db.WithContext(ctx).Where("user_id = ?", uid).Find(&sessions).Error; err != nil {
		return 0, fmt.Errorf("load sessions: %w", err)
	}
	var refresh []models.RefreshToken
	if err := db.WithContext(ctx).Where("user_id = ?", uid).Find(&refresh).Error; err != nil {
		return 0, fmt.Errorf("load refresh tokens: %w", err)
	}
	n := rowBytes(u)
	for _, s := range sessions {
		n += rowBytes(s)
	}
	for _, r := range refresh {
		n += rowBytes(r)
	}
	return n, nil
}

// rowBytes is the logical size of a model's columns: strings and byte
// slices by length, integers and times 8 bytes, NULL 0; a column type of
// its own (the JSON device map) counts what it stores.
func rowBytes(row any) int {
	v := reflect.ValueOf(row)
	n := 0
	for i := range v.NumField() {
		n += valueBytes(v.Field(i))
	}
	return n
}

var timeType = reflect.TypeFor[time.Time]()

func valueBytes(v reflect.Value) int {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0
		}
		v = v.Elem()
	}
	if v.Type() == timeType {
		return 8
	}
	if dv, ok := v.Interface().(driver.Valuer); ok {
		stored, err := dv.Value()
		if err != nil || stored == nil {
			return 0
		}
		return valueBytes(reflect.ValueOf(stored))
	}
	switch v.Kind() {
	case reflect.String, reflect.Slice:
		return v.Len()
	case reflect.Bool:
		return 1
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return 8
	default:
		return 0
	}
}
