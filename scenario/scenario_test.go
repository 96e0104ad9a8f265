package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/strategy"
)

// TestTableIsComplete checks the table's shape: every case is named once,
// expects an outcome of every strategy, and says which outcomes show its
// guarantee.
func TestTableIsComplete(t *testing.T) {
	names := strategy.Names()
	ids, titles := map[string]bool{}, map[string]bool{}
	for _, c := range All() {
		t.Run(c.ID, func(t *testing.T) {
			if c.ID == "" || c.Title == "" || c.run == nil {
				t.Fatalf("a case needs an id, a title and steps: %+v", c)
			}
			if ids[c.ID] || titles[c.Title] {
				t.Errorf("id %q or title %q used twice", c.ID, c.Title)
			}
			ids[c.ID], titles[c.Title] = true, true
			if len(c.Shows) == 0 {
				t.Errorf("no outcome shows the guarantee")
			}
			if (c.Setting == "") != (c.Configure == nil) {
				t.Errorf("Setting %q and Configure must come together", c.Setting)
			}
			var got []string
			for n, o := range c.Want {
				got = append(got, n)
				if o == "" {
					t.Errorf("%s: empty outcome", n)
				}
				if c.Claim == "" && !slices.Contains(c.Shows, o) {
					t.Errorf("%s: every strategy promises the guarantee, but the table expects %q", n, o)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(names))
			if !slices.Equal(got, want) {
				t.Errorf("the table covers %v, want every strategy %v", got, want)
			}
		})
	}
	a := All()
	a[0].Want["stateless"] = "changed"
	if All()[0].Want["stateless"] == "changed" {
		t.Errorf("All must build a fresh table on each call")
	}
}

// TestClaimsAgreeWithCapabilities checks, without a server, that every
// strategy claims a case's guarantee exactly when the table expects it to
// show it, under the case's setting.
func TestClaimsAgreeWithCapabilities(t *testing.T) {
	for _, c := range All() {
		cfg := config.Defaults()
		if c.Configure != nil {
			c.Configure(cfg)
		}
		for _, n := range strategy.Names() {
			s, err := strategy.Build(n, strategy.Options{Supersede: cfg.JWT.RefreshSupersedesAccess})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(strategy.CapabilitiesOf(s))
			if err != nil {
				t.Fatal(err)
			}
			claims := Properties(n)
			if err := json.Unmarshal(raw, &claims); err != nil {
				t.Fatal(err)
			}
			if p := c.Judge(n, claims, c.Want[n]).Problems; len(p) > 0 {
				t.Errorf("%s / %s: %s", c.ID, n, strings.Join(p, "; "))
			}
		}
	}
}

func TestJudge(t *testing.T) {
	plain := Case{ID: "g", Claim: "c", Shows: []Outcome{Revoked}, Want: map[string]Outcome{"s": Revoked}}
	notShown := Case{ID: "g", Claim: "c", Shows: []Outcome{Revoked}, Want: map[string]Outcome{"s": UntilExpiry}}
	overRevoke := Case{ID: "g", Claim: "c", Shows: []Outcome{Coexist}, UnclaimedMayShow: true, Want: map[string]Outcome{"s": Coexist}}
	everyone := Case{ID: "g", Shows: []Outcome{ReuseDetected}, Want: map[string]Outcome{"s": ReuseDetected}}
	cases := []struct {
		name            string
		c               Case
		claims          map[string]bool
		got             Outcome
		claimed, shown  bool
		problems        int
		problemContains string
	}{
		{"claimed and shown", plain, map[string]bool{"c": true}, Revoked, true, true, 0, ""},
		{"claimed, not shown", notShown, map[string]bool{"c": true}, UntilExpiry, true, false, 1, "claims c"},
		{"not claimed, not shown", notShown, map[string]bool{"c": false}, UntilExpiry, false, false, 0, ""},
		{"not claimed, shown", plain, map[string]bool{"c": false}, Revoked, false, true, 1, "does not claim c"},
		{"not claimed, shown, about over-revoking", overRevoke, map[string]bool{"c": false}, Coexist, false, true, 0, ""},
		{"outcome differs from the table", notShown, map[string]bool{"c": false}, NotSupported, false, false, 1, `table expects "valid until expiry"`},
		{"capability not reported", plain, map[string]bool{}, Revoked, false, true, 2, "does not report"},
		{"claimed by every strategy", everyone, nil, ReuseDetected, true, true, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.c.Judge("s", tc.claims, tc.got)
			if v.Claimed != tc.claimed || v.Shown != tc.shown || len(v.Problems) != tc.problems {
				t.Fatalf("Judge: %+v; want claimed %v shown %v and %d problem(s)", v, tc.claimed, tc.shown, tc.problems)
			}
			if tc.problemContains != "" && !strings.Contains(strings.Join(v.Problems, "; "), tc.problemContains) {
				t.Fatalf("problems %q lack %q", v.Problems, tc.problemContains)
			}
		})
	}
}

// cannedServer answers every request with one status and body, or fails.
type cannedServer struct {
	status int
	body   string
	err    error
}

func (s cannedServer) Do(context.Context, Request) (*Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &Response{Status: s.status, Header: http.Header{}, Raw: []byte(s.body)}, nil
}
func (cannedServer) Now() time.Time           { return time.Time{} }
func (cannedServer) Advance(time.Duration)    {}
func (cannedServer) ResetToken(string) string { return "" }
func (cannedServer) DB() *gorm.DB             { return nil }

// TestRunBreaks checks that a case that meets an answer it does not expect
// ends with an error, not an outcome.
func TestRunBreaks(t *testing.T) {
	down := errors.New("connection refused")
	cases := []struct {
		name string
		srv  cannedServer
		want string
	}{
		{"no answer", cannedServer{err: down}, "connection refused"},
		{"server error", cannedServer{status: 500, body: `{"error":{"code":"internal"}}`}, "server error 500"},
		{"database down", cannedServer{status: 503, body: `{"error":{"code":"unavailable"}}`}, "server error 503"},
		{"not JSON", cannedServer{status: 201, body: `<html>`}, "not a JSON object"},
		{"unexpected status", cannedServer{status: 418, body: `{}`}, "answered 418"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range All() {
				got, err := c.Run(context.Background(), Env{Server: tc.srv, Config: config.Defaults()})
				if err == nil || got != "" || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: Run = %q, %v; want an error about %q", c.ID, got, err, tc.want)
				}
				if tc.srv.err != nil && !errors.Is(err, down) {
					t.Fatalf("%s: the error %v does not wrap the transport's", c.ID, err)
				}
			}
		})
	}
	if _, err := All()[0].Run(context.Background(), Env{}); err == nil {
		t.Fatal("Run without a server: no error")
	}
	if _, err := (Case{ID: "hand-made"}).Run(context.Background(), Env{Server: cannedServer{}, Config: config.Defaults()}); err == nil {
		t.Fatal("Run of a case without steps: no error")
	}
}
