package ratelimit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/revocable/authserver/ratelimit"
)

func TestParseRule(t *testing.T) {
	cases := []struct {
		in   string
		want ratelimit.Rule
		bad  bool
	}{
		{"", ratelimit.Rule{}, false},
		{"0", ratelimit.Rule{}, false},
		{"  0 ", ratelimit.Rule{}, false},
		{"0/1m", ratelimit.Rule{}, false},
		{"30/1m", ratelimit.Rule{N: 30, Per: time.Minute}, false},
		{"150/5m", ratelimit.Rule{N: 150, Per: 5 * time.Minute}, false},
		{" 5/30s ", ratelimit.Rule{N: 5, Per: 30 * time.Second}, false},
		{"1/1h30m", ratelimit.Rule{N: 1, Per: 90 * time.Minute}, false},
		{"30/m", ratelimit.Rule{N: 30, Per: time.Minute}, false},
		{"10/s", ratelimit.Rule{N: 10, Per: time.Second}, false},
		{"2/h", ratelimit.Rule{N: 2, Per: time.Hour}, false},
		{"1073741824/1s", ratelimit.Rule{N: 1 << 30, Per: time.Second}, false},

		{"30", ratelimit.Rule{}, true},
		{"30/", ratelimit.Rule{}, true},
		{"/1m", ratelimit.Rule{}, true},
		{"-1/1m", ratelimit.Rule{}, true},
		{"+3/1m", ratelimit.Rule{}, true},
		{"3.5/1m", ratelimit.Rule{}, true},
		{"3 /1m", ratelimit.Rule{}, true},
		{"3/ 1m", ratelimit.Rule{}, true},
		{"3/0s", ratelimit.Rule{}, true},
		{"3/0", ratelimit.Rule{}, true},
		{"3/-1m", ratelimit.Rule{}, true},
		{"3/1", ratelimit.Rule{}, true},
		{"3/1d", ratelimit.Rule{}, true},
		{"3/1m/2", ratelimit.Rule{}, true},
		{"three/1m", ratelimit.Rule{}, true},
		{"30 per minute", ratelimit.Rule{}, true},
		{"1073741825/1s", ratelimit.Rule{}, true},
		{"99999999999999999999/1s", ratelimit.Rule{}, true},
		{"off", ratelimit.Rule{}, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ratelimit.ParseRule(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("ParseRule(%q) = %v, want an error", c.in, got)
				}
				if !errors.Is(err, ratelimit.ErrBadRule) {
					t.Fatalf("ParseRule(%q) error %v does not match ErrBadRule", c.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseRule(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if got.Off() != (c.want.N == 0) {
				t.Fatalf("ParseRule(%q).Off() = %v", c.in, got.Off())
			}
			// String gives back something ParseRule reads to the same rule.
			again, err := ratelimit.ParseRule(got.String())
			if err != nil || again != got {
				t.Fatalf("ParseRule(%q.String() = %q) = %+v, %v", c.in, got.String(), again, err)
			}
		})
	}
}
