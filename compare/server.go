package compare

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/clock"
	"github.com/revocable/authserver/internal/mailbox"
	"github.com/revocable/authserver/scenario"
	"github.com/revocable/authserver/strategy"
)

// newClock is the servers' clock: it stands still until Advance, as the
// routes test suite's does, so that the scenarios see the same instants on
// both (a login in the same microsecond as a logout-all, last_seen_at to
// the millisecond). Nothing measured depends on it: latencies are timed
// with the real clock, and the verification cache's staleness runs on the
// monotonic clock.
func newClock() *clock.Manual { return clock.NewManual(time.Now().UTC().Truncate(time.Millisecond)) }

// settingCacheOff is the variant that measures verification without the
// cache.
const settingCacheOff = "cache.enabled=false"

func settingName(s string) string {
	if s == "" {
		return "built-in defaults"
	}
	return s
}

// strat is one strategy under comparison: its database, and its servers
// on that database, one per configuration variant (the built-in defaults
// under "", the cache off, the scenarios' settings), started when first
// needed. They share the secret, the clock and the mailer, so that a token
// one of them issued verifies on the others.
type strat struct {
	name string
	// hidden is the stateless baseline measured only for the ratios, when
	// stateless is not among the strategies compared.
	hidden  bool
	db      *gorm.DB
	secret  []byte
	clock   *clock.Manual
	mailer  *mailbox.Mailbox
	servers map[string]*server
	users   int
	// adjustClaims is Options.adjustClaims.
	adjustClaims func(string, map[string]bool)

	// tokens are the access tokens of the load clients; tokens[0] is also
	// the token of the sequential latency timing.
	tokens          []string
	bytesPerSession float64
	// reads are the tables a verification read with the cache off.
	reads        []string
	invalidation map[string]invalidationCost
	cells        map[string]Cell
	outcomes     map[string]string
	mismatches   []Mismatch
}

// server is one running server of a strategy, with its own statement
// counter and its measurements.
type server struct {
	setting string
	cfg     *config.Config
	srv     *authserver.Server
	client  *client
	count   *counter
	claims  map[string]bool
	verify  verifyCost
}

// baseConfig is the configuration of every server: the built-in defaults
// with the strategy, bcrypt at cost 4, and no rate limits or brute-force
// delays, which a run that signs in hundreds of users from one address
// would trip over (none of them is on the verify path).
func baseConfig(name string) *config.Config {
	cfg := config.Defaults()
	cfg.Strategy = name
	cfg.Password.BcryptCost = 4
	cfg.NoLimits()
	return cfg
}

// newStrat is the strategy on its fresh database db, with no server yet.
func newStrat(name string, db *gorm.DB, adjust func(string, map[string]bool)) *strat {
	return &strat{
		name: name, db: db, secret: []byte(strategy.NewSecret(32)), clock: newClock(), mailer: &mailbox.Mailbox{},
		servers: map[string]*server{}, adjustClaims: adjust,
		invalidation: map[string]invalidationCost{}, cells: map[string]Cell{}, outcomes: map[string]string{},
	}
}

// server returns the strategy's server of the setting, starting it on
// first use; configure applies the setting to the base configuration.
func (s *strat) server(ctx context.Context, setting string, configure func(*config.Config), cleanups *[]func()) (*server, error) {
	if sv, ok := s.servers[setting]; ok {
		return sv, nil
	}
	cfg := baseConfig(s.name)
	if configure != nil {
		configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("setting %q: %w", setting, err)
	}
	srv, err := authserver.New(ctx, authserver.Options{
		Config: cfg, DB: s.db, Secret: s.secret, Now: s.clock.Now, Mailer: s.mailer, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	count := &counter{}
	if err := count.register(srv.DB()); err != nil {
		_ = srv.Close()
		return nil, err
	}
	// The first outbox read makes the cache trusted from the first
	// request, as the serve command's does.
	if err := srv.Start(ctx); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	hs := httptest.NewServer(srv.Handler())
	*cleanups = append(*cleanups, func() {
		hs.Close()
		_ = srv.Stop()
	})
	sv := &server{setting: setting, cfg: cfg, srv: srv, client: newClient(hs), count: count}
	if sv.claims, err = scenario.Claims(ctx, s.env(sv), s.name); err != nil {
		return nil, err
	}
	if s.adjustClaims != nil {
		s.adjustClaims(s.name, sv.claims)
	}
	s.servers[setting] = sv
	return sv, nil
}

// env is the scenario.Env of one of the strategy's servers.
func (s *strat) env(sv *server) scenario.Env {
	return scenario.Env{Server: scenarioServer{s: s, sv: sv}, Config: sv.cfg, ClientIP: "127.0.0.1"}
}

// scenarioServer is a server as the scenarios drive it: over loopback HTTP.
type scenarioServer struct {
	s  *strat
	sv *server
}

func (x scenarioServer) Do(ctx context.Context, r scenario.Request) (*scenario.Response, error) {
	return x.sv.client.do(ctx, call{method: r.Method, path: r.Path, token: r.Token, body: r.Body, header: r.Header})
}

func (x scenarioServer) Now() time.Time                 { return x.s.clock.Now() }
func (x scenarioServer) Advance(d time.Duration)        { x.s.clock.Advance(d) }
func (x scenarioServer) ResetToken(email string) string { return x.s.resetToken(email) }
func (x scenarioServer) DB() *gorm.DB                   { return x.sv.srv.DB() }

// resetToken is the last reset token mailed to email, once every server's
// reset queue has sent what it holds (tokens are made off the request
// path).
func (s *strat) resetToken(email string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, sv := range s.servers {
		_ = sv.srv.WaitResets(ctx)
	}
	return s.mailer.Last(email)
}

// userAgent is a typical browser's, so that stored device descriptions
// have a realistic size.
const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

const password = "compare-password-1"

// client talks to one server over loopback HTTP.
type client struct {
	base string
	hc   *http.Client
}

func newClient(srv *httptest.Server) *client {
	hc := srv.Client()
	hc.Timeout = 30 * time.Second
	return &client{base: srv.URL, hc: hc}
}

// call is one request: a JSON body (nil for none), a bearer token, headers.
type call struct {
	method, path string
	token        string
	body         any
	header       map[string]string
}

// do sends the request and returns the answer, whatever its status.
func (c *client) do(ctx context.Context, r call) (*scenario.Response, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	return &scenario.Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}, nil
}

// expect sends a request of compare's own set-up and requires the status.
func (c *client) expect(ctx context.Context, want int, r call) (map[string]any, error) {
	a, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.Status != want {
		return nil, fmt.Errorf("%s %s answered %d, want %d: %.200s", r.method, r.path, a.Status, want, a.Raw)
	}
	var body map[string]any
	if len(bytes.TrimSpace(a.Raw)) > 0 {
		if err := json.Unmarshal(a.Raw, &body); err != nil {
			return nil, fmt.Errorf("%s %s: answer is not a JSON object: %.200q", r.method, r.path, a.Raw)
		}
	}
	return body, nil
}

// session is what a login hands a device.
type session struct {
	access, refresh, sid string
}

// register creates a user of compare's own and returns its email and id.
func (s *strat) register(ctx context.Context, c *client) (email, id string, err error) {
	s.users++
	email = fmt.Sprintf("user%d@compare.example.com", s.users)
	body, err := c.expect(ctx, http.StatusCreated, call{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": email, "password": password}})
	if err != nil {
		return "", "", err
	}
	u, _ := body["user"].(map[string]any)
	id, _ = u["id"].(string)
	if id == "" {
		return "", "", fmt.Errorf("register: no user id in %v", body)
	}
	return email, id, nil
}

// login signs the user in on the named device, from a browser.
func login(ctx context.Context, c *client, email, device string) (session, error) {
	body, err := c.expect(ctx, http.StatusOK, call{method: "POST", path: "/api/v1/auth/login",
		body:   map[string]string{"email": email, "password": password, "device_name": device},
		header: map[string]string{"User-Agent": userAgent}})
	if err != nil {
		return session{}, err
	}
	return sessionOf(body)
}

// sessionOf reads the tokens of a login-shaped answer; the sid is the
// access token's claim (signed, not encrypted).
func sessionOf(body map[string]any) (session, error) {
	var s session
	s.access, _ = body["access_token"].(string)
	s.refresh, _ = body["refresh_token"].(string)
	if s.access == "" || s.refresh == "" {
		return s, errors.New("no tokens in the answer")
	}
	parts := strings.Split(s.access, ".")
	if len(parts) != 3 {
		return s, errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return s, fmt.Errorf("decode access token: %w", err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.SID == "" {
		return s, errors.New("the access token carries no sid")
	}
	s.sid = c.SID
	return s, nil
}
