package heapfloor_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/heapfloor"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name               string
		live, roots, floor uint64
		want               int
	}{
		{"small heap reaches the floor", 2 * mib, 2 * mib, 64 * mib, 1550},
		{"before the first collection", 0, 0, 64 * mib, 1600},
		{"live heap above half the floor", 40 * mib, 1 * mib, 64 * mib, 100},
		{"tiny heap: the minimum heap reaches the floor", 100 << 10, 100 << 10, 64 * mib, 1600},
		{"live heap above the floor", 80 * mib, 1 * mib, 64 * mib, 100},
		{"floor just above the default goal", 10 * mib, 0, 21 * mib, 110},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := heapfloor.Percent(tc.live, tc.roots, tc.floor); got != tc.want {
				t.Fatalf("Percent(%d, %d, %d) = %d, want %d", tc.live, tc.roots, tc.floor, got, tc.want)
			}
		})
	}
}

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// TestRunHoldsTheGoalAtTheFloor allocates garbage with a floor set: after
// collections the heap goal is at the floor, not at twice the small live
// heap; once ctx ends, GOGC is back where it was.
func TestRunHoldsTheGoalAtTheFloor(t *testing.T) {
	t.Setenv("GOGC", "") // the test must not inherit an operator's choice
	const floor = 256 << 20
	before := read("/gc/gogc:percent")
	ctx, cancel := context.WithCancel(context.Background())
	if !heapfloor.Run(ctx, floor) {
		t.Fatal("Run did nothing")
	}
	for range 3 {
		runtime.GC()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		goal := read("/gc/heap/goal:bytes")
		if goal >= floor*9/10 && goal <= floor*11/10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d MiB, want about %d MiB (live %d MiB)", goal>>20, floor>>20, read("/gc/heap/live:bytes")>>20)
		}
		for range 1000 {
			sink = make([]byte, 4096)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	deadline = time.Now().Add(5 * time.Second)
	for read("/gc/gogc:percent") != before {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after the context ended, want %d as before", read("/gc/gogc:percent"), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	before := read("/gc/gogc:percent")
	if heapfloor.Run(t.Context(), 64<<20) {
		t.Fatal("Run tuned the collector although GOGC is set")
	}
	if heapfloor.Run(t.Context(), 0) {
		t.Fatal("Run tuned the collector with a floor of 0")
	}
	runtime.GC()
	if got := read("/gc/gogc:percent"); got != before {
		t.Fatalf("GOGC went from %d to %d", before, got)
	}
}
