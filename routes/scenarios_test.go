package routes_test

// The shared scenario suite: what each of the seven strategies does when a
// user logs out, logs out everywhere, changes or resets the password,
// deletes the account, manages devices or refreshes. The scenarios, and the
// outcome expected of every strategy, are the one table of package
// scenario, which `authserver compare` runs too (and prints as the table
// of docs/strategies.md, which scenario's TestStrategiesDocShowsTheTable
// holds to it): this suite fails when a strategy's outcome differs from
// the table, or from the capabilities the running server reports at
// GET /api/v1/strategy.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/scenario"
	"github.com/revocable/authserver/strategy"
)

// Each scenario runs twice: on one instance (every request to one server,
// through its verification cache), and with every verification sent to a
// second instance on the same database, with a cache of its own, that
// learns of changes from the invalidation outbox alone (it reads the
// outbox before each verification: the state of an instance once
// cache.max_staleness has passed).
func TestScenarios(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		// Each strategy's run has its own databases and servers; most of
		// its time is spent waiting on the database, so they overlap.
		t.Parallel()
		for _, sc := range scenario.All() {
			t.Run(sc.ID, func(t *testing.T) {
				for _, inst := range []string{"one instance", "verified on another instance"} {
					t.Run(inst, func(t *testing.T) {
						var opts []func(*config.Config)
						if sc.Configure != nil {
							opts = append(opts, sc.Configure)
						}
						e := newEnv(t, driver, name, opts...)
						if inst != "one instance" {
							e.addVerifier()
						}
						se := scenario.Env{Server: scServer{e}, Config: e.cfg, ClientIP: "192.0.2.10"}
						claims, err := scenario.Claims(t.Context(), se, name)
						if err != nil {
							t.Fatal(err)
						}
						got, err := sc.Run(t.Context(), se)
						if err != nil {
							t.Fatal(err)
						}
						for _, p := range sc.Judge(name, claims, got).Problems {
							t.Error(p)
						}
					})
				}
			})
		}
	})
}

// scServer is the scenario.Server of an env: requests go through e.send,
// so that after addVerifier every verification goes to the other instance.
type scServer struct{ e *env }

func (s scServer) Do(_ context.Context, r scenario.Request) (*scenario.Response, error) {
	out := s.e.send(req{method: r.Method, path: r.Path, token: r.Token, body: r.Body, header: r.Header})
	return &scenario.Response{Status: out.Code, Header: out.Header, Raw: out.Raw}, nil
}

func (s scServer) Now() time.Time                 { return s.e.clock.Now() }
func (s scServer) Advance(d time.Duration)        { s.e.clock.Advance(d) }
func (s scServer) ResetToken(email string) string { return s.e.mailer.Last(email) }
func (s scServer) DB() *gorm.DB                   { return s.e.srv.DB() }

// The helpers below serve the other tests of the package (the concurrency
// tests) that check revocation outcomes.

// scReportedCaps is what GET /api/v1/strategy reports.
func scReportedCaps(e *env) strategy.Capabilities {
	e.t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/strategy"})
	var info struct {
		Name         string                `json:"name"`
		Capabilities strategy.Capabilities `json:"capabilities"`
	}
	if err := json.Unmarshal(r.Raw, &info); err != nil {
		e.t.Fatalf("GET /api/v1/strategy: %v", err)
	}
	if info.Name != e.name {
		e.t.Fatalf("GET /api/v1/strategy names %q, want %q", info.Name, e.name)
	}
	return info.Capabilities
}

func scVerify(e *env, token string) *resp {
	e.t.Helper()
	return e.send(req{method: "GET", path: "/api/v1/auth/verify", token: token})
}

// scWantError fails unless r is the given error answer.
func scWantError(t *testing.T, what string, r *resp, status int, code string) {
	t.Helper()
	if r.Code != status || r.errCode() != code {
		t.Fatalf("%s: got %d %q, want %d %q; body %s", what, r.Code, r.errCode(), status, code, r.Raw)
	}
}

// scWantRejected fails unless the access token is refused as revoked or, for
// the strategies whose signing key changed or disappeared, as invalid.
func scWantRejected(t *testing.T, e *env, what, token string) {
	t.Helper()
	r := scVerify(e, token)
	if r.Code != http.StatusUnauthorized || (r.errCode() != "token_revoked" && r.errCode() != "token_invalid") {
		t.Fatalf("%s: verify answered %d %q, want 401 token_revoked or token_invalid", what, r.Code, r.errCode())
	}
}

// scWantDeviceIDs fails unless the caller's device list holds exactly ids.
func scWantDeviceIDs(t *testing.T, e *env, what, token string, ids ...string) {
	t.Helper()
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/sessions", token: token})
	var out struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		t.Fatalf("%s: GET /sessions: %v", what, err)
	}
	var got []string
	for _, s := range out.Sessions {
		got = append(got, s.ID)
	}
	want := slices.Clone(ids)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: device ids %v, want %v", what, got, want)
	}
}
