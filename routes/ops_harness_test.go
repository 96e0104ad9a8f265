package routes_test

// Fixtures of the operations tests (metrics, logs, request ids, audit
// events, key rotation): a server whose log a test reads, the metrics
// scraped over HTTP, and the login id a token carries.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/models/dbtest"
)

// logBuffer is a log sink that tests read while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines written since offset (a length of String()).
func (l *logBuffer) since(offset int) []string {
	s := l.String()[offset:]
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// newEnvLog is newEnv with the server's log written to a buffer, in the
// format (text or json) and at the level of the configuration as
// authserver.NewLogger builds it: what serve logs.
func newEnvLog(t testing.TB, driver, name string, opts ...func(*config.Config)) (*env, *logBuffer) {
	t.Helper()
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.NoLimits()
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	buf := &logBuffer{}
	log, err := authserver.NewLogger(cfg, buf)
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.Open(t, driver)
	clk := newClock()
	mailer := &mailbox.Mailbox{}
	srv := startServer(t, authserver.Options{Config: cfg, DB: db, Secret: testSecret, Log: log, Mailer: mailer, Now: clk.Now})
	return &env{t: t, driver: driver, name: name, cfg: cfg, db: db, srv: srv, tokens: srv.Tokens(), handler: srv.Handler(), clock: clk, mailer: mailer}, buf
}

// withMetrics turns the metrics on (any metrics.addr does: the tests serve
// the handler on a listener of their own).
func withMetrics(c *config.Config) { c.Metrics.Addr = "127.0.0.1:0" }

// metricsServer serves e's metrics handler on a test listener.
func metricsServer(t testing.TB, e *env) *httptest.Server {
	t.Helper()
	h := e.srv.MetricsHandler()
	if h == nil {
		t.Fatal("metrics are on, yet the server has no metrics handler")
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// scrape is one scrape: the exposition text and its parsed families.
type scrape struct {
	text string
	fams map[string]*dto.MetricFamily
}

func scrapeMetrics(t testing.TB, ts *httptest.Server) scrape {
	t.Helper()
	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, b.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, b.String())
	}
	return scrape{text: b.String(), fams: fams}
}

// value is the value of the series of family name with exactly the
// labels given (name=value pairs); 0 when absent. Histograms give their
// sample count.
func (s scrape) value(name string, labels ...string) float64 {
	f := s.fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	if len(m.GetLabel()) != len(pairs)/2 {
		return false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		want[pairs[i]] = pairs[i+1]
	}
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// series lists the label sets of family name, as "k=v,k=v" in label order.
func (s scrape) series(name string) map[string]float64 {
	out := map[string]float64{}
	f := s.fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		v := 0.0
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		}
		out[strings.Join(parts, ",")] = v
	}
	return out
}

// sidOf reads the login id (sid) of an access token, unverified.
func sidOf(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.SID == "" {
		t.Fatalf("no sid in %s", b)
	}
	return c.SID
}

// tokensOf reads the access and refresh token of a login-shaped answer
// (without verifying, unlike sessionOf: the metrics tests count every
// verification).
func tokensOf(t testing.TB, r *resp) session {
	t.Helper()
	s := session{access: r.str("access_token"), refresh: r.str("refresh_token")}
	if s.access == "" || s.refresh == "" {
		t.Fatalf("no tokens in %s", r.Raw)
	}
	s.loginID = sidOf(t, s.access)
	return s
}

// quietLog discards.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
