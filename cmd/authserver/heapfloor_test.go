package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/revocable/authserver/internal/binarytest"
)

// TestHeapFloorBinary: serve raises GOGC to hold server.heap_floor_mib
// (read back from the process's own go_gc_gogc_percent metric), leaves the
// Go default when the floor is 0, and leaves an operator's GOGC alone.
func TestHeapFloorBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	gogc := regexp.MustCompile(`(?m)^go_gc_gogc_percent ([0-9.e+]+)$`)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(p float64) bool
		want  string
	}{
		{"default floor", map[string]string{"GOGC": ""}, func(p float64) bool { return p > 100 }, "above 100"},
		{"floor 0", map[string]string{"GOGC": "", "AUTH_SERVER_HEAP_FLOOR_MIB": "0"}, func(p float64) bool { return p == 100 }, "100"},
		{"GOGC set", map[string]string{"GOGC": "150"}, func(p float64) bool { return p == 150 }, "150"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metricsAddr := freePort(t)
			tc.env["AUTH_METRICS_ADDR"] = metricsAddr
			binarytest.Start(t, binarytest.Options{Driver: "sqlite", Env: tc.env})
			m := gogc.FindStringSubmatch(get(t, "http://"+metricsAddr+"/metrics"))
			if m == nil {
				t.Fatal("the scrape has no go_gc_gogc_percent")
			}
			p, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Fatalf("GOGC is %v, want %s", p, tc.want)
			}
		})
	}
}
