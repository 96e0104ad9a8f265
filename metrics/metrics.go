// Package metrics is the server's Prometheus instrumentation, served on a
// listener of its own (metrics.addr) at GET /metrics.
//
// It is a package for three reasons. There is one registry per server,
// never Prometheus's global one, so that two servers in one process (the
// tests, the demo, an application embedding several) do not collide. The
// metric names and label values are part of the operator's contract
// (dashboards and alerts are written against them), so they are spelled
// in one place, here, and docs/operating.md (section "Metrics") lists the same. And the
// packages that keep counters of their own (cache, ratelimit, passhash,
// workq, bruteforce) keep plain atomic counters and a Stats method; the
// collectors here read those at scrape time, so none of them imports
// Prometheus and none pays anything between scrapes.
//
// The request path pays a few atomic additions: every counter a handler
// bumps is created once, with its labels, when the Metrics is built
// (Login, Verification, Refresh, Revocation index arrays of them), and
// the per-route HTTP series are looked up in a copy-on-write map without a
// lock. No label ever carries a user id, an email, an IP address or a
// token: labels are route patterns, methods, status codes and the fixed
// result names below.
package metrics

import (
	"database/sql"
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/revocable/authserver/bruteforce"
	"github.com/revocable/authserver/cache"
	"github.com/revocable/authserver/passhash"
	"github.com/revocable/authserver/ratelimit"
	"github.com/revocable/authserver/workq"
)

// namespace prefixes every metric of ours.
const namespace = "authserver"

// NoRoute is the route label of a request that matched no route (404):
// the raw path never becomes a label.
const NoRoute = "(no route)"

// LoginResult is the result label of authserver_logins_total.
type LoginResult int

// Login results.
const (
	// LoginSuccess: tokens were issued.
	LoginSuccess LoginResult = iota
	// LoginInvalidCredentials: wrong email or password.
	LoginInvalidCredentials
	// LoginRateLimited: refused by the per-IP rate limit or the
	// per-account brute-force throttle, before any password check.
	LoginRateLimited
	// LoginError: anything else (a malformed request, the server unable
	// to answer).
	LoginError
)

// VerifyResult is the result label of authserver_token_verifications_total.
type VerifyResult int

// Verification results. A verification the server could not decide (the
// database down: 503) is not counted: it is neither a valid nor an invalid
// token; http_requests_total shows it.
const (
	VerifyOK VerifyResult = iota
	// VerifyInvalid: missing, malformed, badly signed, an unknown kid, an
	// unknown or deleted user.
	VerifyInvalid
	VerifyExpired
	// VerifyRevoked: the strategy's state says the login ended.
	VerifyRevoked
)

// RefreshResult is the result label of authserver_refreshes_total.
type RefreshResult int

// Refresh results.
const (
	RefreshOK RefreshResult = iota
	// RefreshReused: a spent refresh token came back after the grace
	// window; its login was signed out.
	RefreshReused
	// RefreshInvalid: the refresh token (or its absence, or the CSRF
	// check of the cookie) was refused.
	RefreshInvalid
	// RefreshError: the server could not answer (5xx).
	RefreshError
)

// RevocationKind is the kind label of authserver_revocations_total.
type RevocationKind int

// Revocation kinds: what ended one or more logins.
const (
	RevokeLogout RevocationKind = iota
	RevokeLogoutAll
	RevokeLogoutOthers
	// RevokeDevice: DELETE /sessions/{id}.
	RevokeDevice
	// RevokePassword: a password change or a completed reset.
	RevokePassword
	// RevokeDeletion: an account deleted by its owner.
	RevokeDeletion
	// RevokeAdmin: sessions revoked by an administrator (Server.RevokeSessions).
	RevokeAdmin
	// RevokeMFA: a second factor confirmed or removed, which ends the
	// account's other logins (mfa.enroll_revokes_others).
	RevokeMFA
)

// MFAResult is the result label of authserver_mfa_verifications_total.
type MFAResult int

// MFA results: the second step of a login.
const (
	MFAOK MFAResult = iota
	MFAInvalidCode
	MFAInvalidToken
	MFARateLimited
	MFAError
)

// The label values, indexed by the types above.
var (
	loginResults   = [...]string{"success", "invalid_credentials", "rate_limited", "error"}
	verifyResults  = [...]string{"ok", "invalid", "expired", "revoked"}
	refreshResults = [...]string{"ok", "reused", "invalid", "error"}
	revokeKinds    = [...]string{"logout", "logout_all", "logout_others", "device", "password", "deletion", "admin", "mfa"}
	mfaResults     = [...]string{"ok", "invalid_code", "invalid_token", "rate_limited", "error"}
)

// durationBuckets span a cached verification (~100µs) to a bcrypt login
// at a high cost (seconds).
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Info labels authserver_build_info.
type Info struct {
	// Version is the server's version; empty means the module version
	// of the binary (Version()).
	Version  string
	Strategy string
	Driver   string
}

// Metrics is one server's instrumentation. A nil *Metrics is valid and
// records nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// routes holds the pre-curried series of each (method, route, code)
	// seen: read without a lock, copied on the rare first sight.
	routes   atomic.Pointer[map[routeKey]*routeSeries]
	routesMu sync.Mutex

	logins        [len(loginResults)]prometheus.Counter
	verifications [len(verifyResults)]prometheus.Counter
	refreshes     [len(refreshResults)]prometheus.Counter
	revocations   [len(revokeKinds)]prometheus.Counter
	mail          *prometheus.CounterVec
	mfa           [len(mfaResults)]prometheus.Counter
}

type routeKey struct {
	method, route string
	code          int
}

type routeSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New builds the metrics of one server with the Go runtime and process
// collectors and authserver_build_info. Add the stats collectors with
// Watch once what they read exists.
func New(info Info) *Metrics {
	if info.Version == "" {
		info.Version = Version()
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by method, route pattern and status code.",
	}, []string{"method", "route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by method and route pattern.", Buckets: durationBuckets,
	}, []string{"method", "route"})
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "logins_total",
		Help: "Password logins, by result: success, invalid_credentials, rate_limited or error.",
	}, []string{"result"})
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_verifications_total",
		Help: "Access token verifications (GET /auth/verify and every authenticated route), by result: ok, invalid, expired or revoked.",
	}, []string{"result"})
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "refreshes_total",
		Help: "Refresh token exchanges, by result: ok, reused, invalid or error.",
	}, []string{"result"})
	revocations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "revocations_total",
		Help: "Completed revocations, by kind: logout, logout_all, logout_others, device, password, deletion, admin or mfa.",
	}, []string{"kind"})
	mfa := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "mfa_verifications_total",
		Help: "Second steps of logins (POST /auth/mfa/verify), by result: ok, invalid_code, invalid_token, rate_limited or error.",
	}, []string{"result"})
	for i, v := range mfaResults {
		m.mfa[i] = mfa.WithLabelValues(v)
	}
	for i, v := range loginResults {
		m.logins[i] = logins.WithLabelValues(v)
	}
	for i, v := range verifyResults {
		m.verifications[i] = verifications.WithLabelValues(v)
	}
	for i, v := range refreshResults {
		m.refreshes[i] = refreshes.WithLabelValues(v)
	}
	for i, v := range revokeKinds {
		m.revocations[i] = revocations.WithLabelValues(v)
	}
	// Kinds and results are the server's own constants: no client can
	// mint a series.
	m.mail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "mail_messages_total",
		Help: "Mail outbox delivery attempts, by kind and result: sent, retried, failed or dropped (a reset request for no account).",
	}, []string{"kind", "result"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which version runs which strategy on which database driver.",
	}, []string{"version", "strategy", "driver"})
	build.WithLabelValues(info.Version, info.Strategy, info.Driver).Set(1)
	empty := map[routeKey]*routeSeries{}
	m.routes.Store(&empty)
	m.reg.MustRegister(
		m.requests, m.duration, logins, verifications, refreshes, revocations, mfa, build, m.mail,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Version is the module version the binary was built from ("(devel)"
// for a plain go build in the repository, with the VCS revision when
// known).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	if v == "(devel)" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return v
}

// Sources are the counters the collectors read at scrape time. Nil
// fields are left out.
type Sources struct {
	// DB is the connection pool (go_sql_* metrics, db_name="authserver").
	DB *sql.DB
	// Cache, Feed, Limiter, Hasher and BruteForce return the stats of
	// those packages.
	Cache      func() cache.Stats
	Feed       func() cache.Health
	Limiter    func() ratelimit.Stats
	Hasher     func() passhash.Stats
	BruteForce func() bruteforce.Stats
	// Queues are the background work queues by name.
	Queues map[string]func() workq.Stats
	// MailQueue reads the mail outbox: messages queued or being sent,
	// and the age of the oldest of them.
	MailQueue func() (pending int64, oldest time.Duration, err error)
}

// Mail counts one outcome of a mail delivery attempt.
func (m *Metrics) Mail(kind, result string) {
	if m == nil {
		return
	}
	m.mail.WithLabelValues(kind, result).Inc()
}

// Watch registers the collectors of src.
func (m *Metrics) Watch(src Sources) error {
	if m == nil {
		return nil
	}
	var errs []error
	if src.DB != nil {
		errs = append(errs, m.reg.Register(collectors.NewDBStatsCollector(src.DB, namespace)))
	}
	errs = append(errs, m.reg.Register(newStatsCollector(src)))
	return errors.Join(errs...)
}

// Handler serves the registry in the Prometheus exposition formats at
// GET /metrics (and nothing else). It is meant for the metrics listener
// only, never the API's.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})))
	return mux
}

// Registry is the registry, for tests and applications that gather it
// themselves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request records one answered HTTP request. route is the route pattern
// (NoRoute when none matched). Methods outside the standard ones are
// counted as OTHER, so that a client cannot mint series.
func (m *Metrics) Request(method, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	k := routeKey{method: normMethod(method), route: route, code: code}
	rs, ok := (*m.routes.Load())[k]
	if !ok {
		rs = m.addRoute(k)
	}
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

func (m *Metrics) addRoute(k routeKey) *routeSeries {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	cur := *m.routes.Load()
	if rs, ok := cur[k]; ok {
		return rs
	}
	rs := &routeSeries{
		count:    m.requests.WithLabelValues(k.method, k.route, strconv.Itoa(k.code)),
		duration: m.duration.WithLabelValues(k.method, k.route),
	}
	next := make(map[routeKey]*routeSeries, len(cur)+1)
	for key, v := range cur {
		next[key] = v
	}
	next[k] = rs
	m.routes.Store(&next)
	return rs
}

// normMethod returns the method's constant (no allocation) or OTHER.
func normMethod(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	}
	return "OTHER"
}

// Login counts a login attempt.
func (m *Metrics) Login(r LoginResult) {
	if m != nil {
		m.logins[r].Inc()
	}
}

// Verification counts a decided token verification.
func (m *Metrics) Verification(r VerifyResult) {
	if m != nil {
		m.verifications[r].Inc()
	}
}

// Refresh counts a refresh attempt.
func (m *Metrics) Refresh(r RefreshResult) {
	if m != nil {
		m.refreshes[r].Inc()
	}
}

// Revocation counts a completed revocation.
func (m *Metrics) Revocation(k RevocationKind) {
	if m != nil {
		m.revocations[k].Inc()
	}
}

// MFA counts one second step of a login.
func (m *Metrics) MFA(r MFAResult) {
	if m != nil {
		m.mfa[r].Inc()
	}
}
