// Package scenario is the one table of what each revocation strategy does.
// Every Case names a scenario driven through the HTTP API, the guarantee it
// checks, the claim under which a strategy promises that guarantee, and the
// outcome expected of each strategy.
//
// Two consumers run the same table, so that they cannot drift apart:
//
//   - the routes test suite (routes/scenarios_test.go) runs every case for
//     every strategy on its in-process harness, on one instance and with
//     every verification sent to a second instance, and fails when an
//     outcome differs from the table or from the capabilities the server
//     reports;
//   - `authserver compare` runs every case over loopback HTTP and prints
//     the guarantee matrix (pass / FAIL / n/a) from the outcomes, which is
//     the table in docs/strategies.md; it exits non-zero on the same
//     disagreements.
//
// A case does not assume its outcome: it observes it. It drives the
// server to the decisive answer (is the old token still accepted? did
// logout-all answer 204 or 501?), names the outcome that answer shows, and
// then checks everything that outcome implies (a token "valid until
// expiry" must indeed expire; a refused request must have written
// nothing). Anything else it meets is an error: the scenario broke.
//
// The package is separate from compare because it is the specification
// both consumers share, and it depends on neither: only on config (the
// settings a case runs under), models (to check that a refused request
// wrote nothing) and the strategy names.
package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/strategy"
)

// Outcome is what a strategy did in a scenario, in the words of the table.
type Outcome string

// The outcomes. A case names the ones that show its guarantee (Shows).
const (
	// Revoked: the tokens concerned are rejected at the very next request
	// (the clock does not move).
	Revoked Outcome = "revoked at once"
	// UntilExpiry: the tokens keep working until they expire: the
	// limitation of a strategy that keeps no state for what was ended.
	UntilExpiry Outcome = "valid until expiry"
	// NotSupported: 501 not_supported, and nothing changes.
	NotSupported Outcome = "501 not_supported"
	// KeepsCaller: logout-others answers 204 and the caller's login lives on.
	KeepsCaller Outcome = "204, caller keeps its login"
	// Reissues: logout-others can only end every login, so it answers 200
	// with fresh tokens for the caller.
	Reissues Outcome = "200 with fresh tokens"
	// Coexist: logins of one user live side by side.
	Coexist Outcome = "logins coexist"
	// Replaced: single_device: a new login signs out the previous device.
	Replaced Outcome = "a new login replaces the previous one"
	// Listed: every live device of the caller is listed.
	Listed Outcome = "devices listed"
	// OneDevice: single_device: there is only ever the current device.
	OneDevice Outcome = "one device only"
	// Enforced: devices.max is enforced.
	Enforced Outcome = "device limit enforced"
	// Unlimited: devices.max has no effect; every login works.
	Unlimited Outcome = "devices.max has no effect"
	// Throttled: last_seen_at moves, at most once a minute.
	Throttled Outcome = "last_seen_at throttled to once a minute"
	// ReuseDetected: a spent refresh token presented after the grace
	// window is reported as reuse and ends its family.
	ReuseDetected Outcome = "reuse detected, family ended"
)

// Case is one row of the table.
type Case struct {
	// ID names the case for good: compare's JSON guarantee id.
	ID string
	// Title is the guarantee, as the row of the table reads.
	Title string
	// Claim is what a strategy that promises the guarantee says about
	// itself: a capability key of GET /api/v1/strategy, or a design
	// property (see Properties); "" means every strategy promises it.
	Claim string
	// Shows are the outcomes that show the guarantee.
	Shows []Outcome
	// UnclaimedMayShow marks a guarantee about not revoking too much: a
	// strategy that does not claim it may still show it.
	UnclaimedMayShow bool
	// Setting is the configuration the case runs under, as config keys
	// ("" for the built-in defaults); Configure applies it (nil for none).
	Setting   string
	Configure func(*config.Config)
	// Want is the expected outcome, per strategy name.
	Want map[string]Outcome

	run func(*probe) Outcome
}

// Server is the server a case drives. compare implements it over loopback
// HTTP, the routes test suite over its in-process harness.
type Server interface {
	// Do sends one request and fills Status, Header and Raw of the
	// answer. An error means no answer came.
	Do(ctx context.Context, r Request) (*Response, error)
	// Now is the server's clock, which stands still until Advance moves it.
	Now() time.Time
	Advance(d time.Duration)
	// ResetToken is the last password-reset token the server mailed to
	// email, "" when none.
	ResetToken(email string) string
	// DB is the server's database, to check that a refused request wrote
	// nothing.
	DB() *gorm.DB
}

// Env is what a case runs against.
type Env struct {
	Server Server
	// Config is the server's configuration (Configure applied).
	Config *config.Config
	// ClientIP is the address the server records for the requests.
	ClientIP string
}

// Request is one request of a case.
type Request struct {
	Method, Path string
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	// Body is sent JSON-encoded when not nil.
	Body   any
	Header map[string]string
}

// Response is a server's answer. Body is the decoded JSON object; the case
// fills it from Raw.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r *Response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// code is the error code of an error answer, "" otherwise.
func (r *Response) code() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *Response) String() string {
	if c := r.code(); c != "" {
		return fmt.Sprintf("%d %s", r.Status, c)
	}
	return fmt.Sprint(r.Status)
}

// failure carries a case's error out of the helpers (see Run).
type failure struct{ err error }

// Run runs the case and returns the outcome it observed, or the error that
// broke it: a request that got no answer, a server error, or an answer
// that fits no outcome of the table.
//
// The steps call helpers that end the case at the first unexpected
// answer, the way t.Fatal ends a test: they panic with a failure value,
// which Run recovers. This keeps the steps as plain as a test's; no panic
// leaves the package.
func (c Case) Run(ctx context.Context, e Env) (got Outcome, err error) {
	if e.Server == nil || e.Config == nil {
		return "", errors.New("scenario: Env needs a Server and its Config")
	}
	if c.run == nil {
		return "", fmt.Errorf("scenario: case %q has no steps: take the cases from All", c.ID)
	}
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	p := &probe{ctx: ctx, e: e, tag: hex.EncodeToString(tag)}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			got, err = "", f.err
		}
	}()
	got = c.run(p)
	if !slices.Contains(c.Outcomes(), got) {
		return "", fmt.Errorf("scenario %s: observed %q, which no strategy of the table shows", c.ID, got)
	}
	return got, nil
}

// Outcomes lists the outcomes the table expects of some strategy, in
// strategy order, once each.
func (c Case) Outcomes() []Outcome {
	var out []Outcome
	for _, n := range strategy.Names() {
		if o, ok := c.Want[n]; ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// Verdict is how an observed outcome stands against the strategy's claims
// and the table.
type Verdict struct {
	// Claimed: the strategy promises the guarantee. Shown: the outcome
	// shows it.
	Claimed, Shown bool
	// Problems are the disagreements, none when the strategy does what it
	// claims and what the table says.
	Problems []string
}

// Judge compares the outcome a strategy showed with its claims (as
// Claims returns them) and with the table.
func (c Case) Judge(name string, claims map[string]bool, got Outcome) Verdict {
	v := Verdict{Claimed: true, Shown: slices.Contains(c.Shows, got)}
	if c.Claim != "" {
		var known bool
		if v.Claimed, known = claims[c.Claim]; !known {
			v.Problems = append(v.Problems, fmt.Sprintf("GET /api/v1/strategy does not report %q, which %s depends on", c.Claim, c.ID))
		}
	}
	switch {
	case v.Claimed && !v.Shown:
		v.Problems = append(v.Problems, fmt.Sprintf("claims %s, but the scenario showed %q", c.claimName(), got))
	case !v.Claimed && v.Shown && !c.UnclaimedMayShow:
		v.Problems = append(v.Problems, fmt.Sprintf("does not claim %s, but the scenario showed %q", c.claimName(), got))
	}
	if want, ok := c.Want[name]; !ok {
		v.Problems = append(v.Problems, fmt.Sprintf("the scenario table has no outcome for %s", name))
	} else if got != want {
		v.Problems = append(v.Problems, fmt.Sprintf("the scenario table expects %q, the scenario showed %q", want, got))
	}
	return v
}

func (c Case) claimName() string {
	if c.Claim == "" {
		return "it (every strategy does)"
	}
	return c.Claim
}

// Properties are the claims of a strategy's design that GET
// /api/v1/strategy does not report: single_login (the strategy keeps one
// login per user, so a new login ends the previous one) and
// multiple_logins (its opposite).
func Properties(name string) map[string]bool {
	single := name == "single_device"
	return map[string]bool{"single_login": single, "multiple_logins": !single}
}

// Claims reads what the server's strategy claims: the capabilities GET
// /api/v1/strategy reports, with the design Properties added.
func Claims(ctx context.Context, e Env, name string) (map[string]bool, error) {
	r, err := e.Server.Do(ctx, Request{Method: http.MethodGet, Path: "/api/v1/strategy"})
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/strategy: %w", err)
	}
	var info struct {
		Name         string          `json:"name"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Raw, &info) != nil {
		return nil, fmt.Errorf("GET /api/v1/strategy: %d %.200s", r.Status, r.Raw)
	}
	if info.Name != name {
		return nil, fmt.Errorf("GET /api/v1/strategy names %q, want %q", info.Name, name)
	}
	claims := map[string]bool{}
	for k, v := range info.Capabilities {
		claims[k] = v
	}
	for k, v := range Properties(name) {
		claims[k] = v
	}
	return claims, nil
}
