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
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/models"
)

// counter counts the SQL statements run on one server's database handle,
// through GORM callbacks registered after each of GORM's own.
type counter struct {
	statements atomic.Int64
	writes     atomic.Int64
	// outbox counts the rows written to the invalidation outbox
	// (models.Invalidation).
	outbox atomic.Int64

	// While tracing, the tables read are noted.
	tracing atomic.Bool
	mu      sync.Mutex
	tables  []string
}

var invalidationType = reflect.TypeFor[models.Invalidation]()

// Statements of the server's background work (models.Background: the
// outbox feed, the prune, the last-seen writer) are not counted: they do
// not belong to any request.
func (c *counter) register(db *gorm.DB) error {
	read := func(tx *gorm.DB) {
		if models.IsBackground(tx.Statement.Context) {
			return
		}
		c.statements.Add(1)
		if c.tracing.Load() {
			c.mu.Lock()
			if t := tx.Statement.Table; !slices.Contains(c.tables, t) {
				c.tables = append(c.tables, t)
			}
			c.mu.Unlock()
		}
	}
	write := func(tx *gorm.DB) {
		if models.IsBackground(tx.Statement.Context) {
			return
		}
		c.statements.Add(1)
		c.writes.Add(1)
		if s := tx.Statement.Schema; s != nil && s.ModelType == invalidationType && tx.Error == nil {
			c.outbox.Add(tx.Statement.RowsAffected)
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

// verifyCost is what one server's verifications cost.
type verifyCost struct {
	queries         float64
	medianUS, p99US float64
	latencies       []time.Duration
	// Throughput: verifications answered, over the time spent.
	loadCount int64
	loadTime  time.Duration
	rps       float64
}

// invalidationCost is what one revocation (or login, or refresh) request
// wrote: INSERT/UPDATE/DELETE statements and outbox rows. supported is
// false when the strategy answered 501 not_supported.
type invalidationCost struct {
	supported        bool
	writes, messages int64
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// prepareLoad registers the strategy's load users on the server of the
// defaults and signs each in: clients access tokens, which every server of
// the strategy accepts. It also measures the stored bytes of a session on
// the first of them.
func prepareLoad(ctx context.Context, s *strat, sv *server, clients int) error {
	for i := range clients {
		email, id, err := s.register(ctx, sv.client)
		if err != nil {
			return err
		}
		if i > 0 {
			l, err := login(ctx, sv.client, email, fmt.Sprintf("client %d", i+1))
			if err != nil {
				return err
			}
			s.tokens = append(s.tokens, l.access)
			continue
		}
		uid, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return fmt.Errorf("user id %q: %w", id, err)
		}
		before, err := storedBytes(ctx, s.db, uid)
		if err != nil {
			return err
		}
		l, err := login(ctx, sv.client, email, "phone")
		if err != nil {
			return err
		}
		after, err := storedBytes(ctx, s.db, uid)
		if err != nil {
			return err
		}
		s.bytesPerSession = float64(after - before)
		s.tokens = append(s.tokens, l.access)
	}
	return nil
}

// timed is one server whose verifications are timed, with its strategy,
// whose load users' tokens it verifies.
type timed struct {
	s  *strat
	sv *server
}

// verifyOnce sends one GET /api/v1/auth/verify with the token on hc.
func verifyOnce(req *http.Request, hc *http.Client) error {
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
		return fmt.Errorf("verify with a valid token answered %d", resp.StatusCode)
	}
	return nil
}

func verifyRequest(ctx context.Context, sv *server, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", sv.client.base+"/api/v1/auth/verify", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// Verify requests are timed in rounds of batch requests per server, the
// servers taking turns, so that whatever else the machine does at the
// time weighs on every one alike.
const (
	warmup = 50 // at most; a tenth of the timed requests when fewer
	batch  = 10
)

// timeVerify sends n timed sequential GET /api/v1/auth/verify requests to
// each server on one keep-alive connection, after a warm-up, and counts
// the statements each server ran for them (noting the tables read by the
// servers without a cache).
func timeVerify(ctx context.Context, ts []timed, n int, prog *progress) error {
	reqs := make([]*http.Request, len(ts))
	for i, t := range ts {
		var err error
		if reqs[i], err = verifyRequest(ctx, t.sv, t.s.tokens[0]); err != nil {
			return err
		}
	}
	prog.say("warming up")
	for i, t := range ts {
		for range min(warmup, max(n/10, 1)) {
			if err := verifyOnce(reqs[i], t.sv.client.hc); err != nil {
				return fmt.Errorf("%s (%s): %w", t.s.name, settingName(t.sv.setting), err)
			}
		}
	}
	start := make([]int64, len(ts))
	for i, t := range ts {
		start[i] = t.sv.count.statements.Load()
		t.sv.count.tracing.Store(t.sv.setting == settingCacheOff)
		t.sv.verify.latencies = make([]time.Duration, 0, n)
	}
	prog.say("timing %d sequential verify requests per server, taking turns", n)
	for done := 0; done < n; done += batch {
		prog.live("timing verify: %d of %d requests per server", done, n)
		for i, t := range ts {
			for range min(batch, n-done) {
				began := time.Now()
				if err := verifyOnce(reqs[i], t.sv.client.hc); err != nil {
					return fmt.Errorf("%s (%s): %w", t.s.name, settingName(t.sv.setting), err)
				}
				t.sv.verify.latencies = append(t.sv.verify.latencies, time.Since(began))
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for i, t := range ts {
		c := &t.sv.verify
		t.sv.count.tracing.Store(false)
		c.queries = float64(t.sv.count.statements.Load()-start[i]) / float64(n)
		c.medianUS = micros(percentile(c.latencies, 0.50))
		c.p99US = micros(percentile(c.latencies, 0.99))
		if t.sv.setting == settingCacheOff {
			t.sv.count.mu.Lock()
			t.s.reads = slices.Clone(t.sv.count.tables)
			t.sv.count.mu.Unlock()
		}
	}
	return nil
}

// burstSlice is the longest stretch one server is loaded before the next
// takes its turn.
const burstSlice = 200 * time.Millisecond

// loader drives one server with concurrent clients, each on its own
// keep-alive connection with its own user's token.
type loader struct {
	t    timed
	hc   *http.Client
	reqs []*http.Request
}

func newLoader(ctx context.Context, t timed, clients int) (*loader, error) {
	tr := &http.Transport{
		MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	}
	l := &loader{t: t, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	for i := range clients {
		req, err := verifyRequest(ctx, t.sv, t.s.tokens[i])
		if err != nil {
			return nil, err
		}
		l.reqs = append(l.reqs, req)
	}
	return l, nil
}

// burst runs every client for d: each sends its next request as soon as
// the previous answered. It returns the verifications answered and the
// time from the start until the last answer.
func (l *loader) burst(d time.Duration) (int64, time.Duration, error) {
	began := time.Now()
	deadline := began.Add(d)
	var n atomic.Int64
	errs := make([]error, len(l.reqs))
	var wg sync.WaitGroup
	for i, req := range l.reqs {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := verifyOnce(req, l.hc); err != nil {
					errs[i] = err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, 0, err
		}
	}
	return n.Load(), time.Since(began), nil
}

// throughput loads each server with clients concurrent clients for d in
// all, in slices of at most burstSlice, the servers taking turns.
func throughput(ctx context.Context, ts []timed, clients int, d time.Duration, prog *progress) error {
	loaders := make([]*loader, len(ts))
	defer func() {
		for _, l := range loaders {
			if l != nil {
				l.hc.CloseIdleConnections()
			}
		}
	}()
	for i, t := range ts {
		l, err := newLoader(ctx, t, clients)
		if err != nil {
			return err
		}
		loaders[i] = l
		// Fill the caches with the clients' users, then open the
		// connections.
		for _, req := range l.reqs {
			if err := verifyOnce(req, l.hc); err != nil {
				return fmt.Errorf("%s (%s): %w", t.s.name, settingName(t.sv.setting), err)
			}
		}
		if _, _, err := l.burst(min(d, 20*time.Millisecond)); err != nil {
			return fmt.Errorf("%s (%s): %w", t.s.name, settingName(t.sv.setting), err)
		}
	}
	slice := min(d, burstSlice)
	rounds := int((d + slice - 1) / slice)
	prog.say("loading each server with %d concurrent clients for %s, taking turns", clients, d)
	for r := range rounds {
		prog.live("throughput: round %d of %d", r+1, rounds)
		for _, l := range loaders {
			n, took, err := l.burst(slice)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", l.t.s.name, settingName(l.t.sv.setting), err)
			}
			l.t.sv.verify.loadCount += n
			l.t.sv.verify.loadTime += took
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for _, l := range loaders {
		c := &l.t.sv.verify
		if c.loadTime > 0 {
			c.rps = float64(c.loadCount) / c.loadTime.Seconds()
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
