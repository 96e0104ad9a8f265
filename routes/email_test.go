package routes

import (
	"testing"

	"github.com/revocable/authserver/models"
)

// TestNormalizeEmailAgrees pins that the router's email normalization and
// models.NormalizeEmail, which the admin CLI uses (user unlock keys the
// brute-force throttle with it), accept the same addresses and spell them
// the same. Once normalizeEmail delegates to models.NormalizeEmail this
// test keeps that so.
func TestNormalizeEmailAgrees(t *testing.T) {
	inputs := []string{
		"ann@example.com", " Ann@Example.COM ", "ANN@EXAMPLE.COM\t", "a.b+tag@sub.example.org",
		"", "   ", "ann", "ann@localhost", "Ann <ann@example.com>", "ann@example.com (comment)",
		"ann@@example.com", "ann@exa mple.com", "\"quoted\"@example.com", "ſ@example.com", "K@example.com",
		string(make([]byte, 300)) + "@example.com", "x@" + string(make([]byte, 250)) + ".com",
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			got, gotErr := normalizeEmail(in)
			want, wantErr := models.NormalizeEmail(in)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("routes: %q, %v; models: %q, %v", got, gotErr, want, wantErr)
			}
			if gotErr != nil && toAPI(gotErr).Message != wantErr.Error() {
				t.Fatalf("messages differ: routes %q, models %q", toAPI(gotErr).Message, wantErr.Error())
			}
		})
	}
}
