package compare

import (
	"context"

	"github.com/revocable/authserver/scenario"
)

// runGuarantees runs every case of the scenario table on the strategy,
// each on the strategy's server of the case's setting, and judges the
// outcome it showed against the claims of that server and the table.
func runGuarantees(ctx context.Context, s *strat, prog *progress, cleanups *[]func()) error {
	for _, c := range scenario.All() {
		prog.say("%s: %s", s.name, c.Title)
		sv, err := s.server(ctx, c.Setting, c.Configure, cleanups)
		if err != nil {
			return err
		}
		got, err := c.Run(ctx, s.env(sv))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cell, ms := judge(c, s.name, sv.claims, got, err)
		s.cells[c.ID] = cell
		s.outcomes[c.ID] = string(got)
		s.mismatches = append(s.mismatches, ms...)
	}
	return nil
}

// judge turns a case's outcome into the cell and the mismatches: a
// scenario that broke, an outcome that disagrees with the claim, or one
// that differs from what the table expects.
func judge(c scenario.Case, name string, claims map[string]bool, got scenario.Outcome, err error) (Cell, []Mismatch) {
	if err != nil {
		claimed := true
		if c.Claim != "" {
			claimed = claims[c.Claim]
		}
		return Fail, []Mismatch{{Strategy: name, Guarantee: c.ID, Claimed: claimed, Held: false,
			Detail: "the scenario broke: " + err.Error()}}
	}
	v := c.Judge(name, claims, got)
	var ms []Mismatch
	for _, p := range v.Problems {
		ms = append(ms, Mismatch{Strategy: name, Guarantee: c.ID, Claimed: v.Claimed, Held: v.Shown, Detail: p})
	}
	switch {
	case v.Claimed && !v.Shown:
		return Fail, ms
	case v.Shown:
		return Pass, ms
	default:
		return NA, ms
	}
}
