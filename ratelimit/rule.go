package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxN bounds N so that N and N/duration stay exact in the float64 math of
// both limiters (x/time/rate and the GCRA Lua script).
const maxN = 1 << 30

// Rule is "N requests per Per", with a burst of N: a client that has been
// quiet for Per may send N requests at once, and then one every Per/N. The
// zero Rule is off (allows everything).
type Rule struct {
	N   int
	Per time.Duration
}

// Off reports whether the rule allows everything.
func (r Rule) Off() bool { return r.N == 0 }

// String gives the rule back in the form ParseRule reads.
func (r Rule) String() string {
	if r.Off() {
		return "0"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// ErrBadRule is wrapped by every error of ParseRule.
var ErrBadRule = errors.New("bad rate limit rule")

// ParseRule reads "N/duration", e.g. "30/1m" or "150/5m" (duration in
// time.ParseDuration's syntax; a bare unit such as "30/m" means one of it).
// "" and "0" turn the rule off, and so does N = 0 with any duration: a
// limit of zero requests would lock every client out, which nobody means.
// Negative N, a duration that is not positive, spaces inside and anything
// else are refused, so that a typo in the config stops the server instead
// of silently running without a limit.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Rule{}, nil
	}
	ns, ds, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("%w %q: want N/duration, e.g. 30/1m", ErrBadRule, s)
	}
	n, err := strconv.Atoi(ns)
	if err != nil || strings.ContainsAny(ns, "+ ") {
		return Rule{}, fmt.Errorf("%w %q: N must be a whole number", ErrBadRule, s)
	}
	if n < 0 || n > maxN {
		return Rule{}, fmt.Errorf("%w %q: N must be between 0 and %d", ErrBadRule, s, maxN)
	}
	if ds == "s" || ds == "m" || ds == "h" {
		ds = "1" + ds
	}
	per, err := time.ParseDuration(ds)
	if err != nil || strings.ContainsAny(ds, "+ ") {
		return Rule{}, fmt.Errorf("%w %q: the duration must look like 1m, 30s or 1h", ErrBadRule, s)
	}
	if per <= 0 {
		return Rule{}, fmt.Errorf("%w %q: the duration must be positive", ErrBadRule, s)
	}
	if n == 0 {
		return Rule{}, nil
	}
	return Rule{N: n, Per: per}, nil
}
