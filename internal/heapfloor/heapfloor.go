// Package heapfloor holds the Go collector's heap goal at or above a floor.
//
// Why it exists: the runtime starts a collection when the heap reaches twice
// what the previous one kept (GOGC=100), and at least 4 MiB. The server keeps
// 2 to 3 MiB alive, so under load it collected about 20 times a second, which
// perf put at 7% of its CPU on the verify path (bench/throughput.sh). While
// the live heap is small, a larger GOGC keeps the goal at the floor; once it
// is larger than half the floor, GOGC is back at 100 and the runtime behaves
// as usual. The price is memory the operator chose: the heap may grow to the
// floor before it is collected.
//
// GOGC is a setting of the whole process, so only the authserver binary
// uses this package; an application that embeds the server tunes its own
// runtime. An operator who sets the GOGC environment variable has decided:
// Run then changes nothing.
package heapfloor

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Percent is the GOGC that puts the runtime's next heap goal at floor,
// never below 100 (the runtime's default). The runtime's goal is the larger
// of live + (live+roots)×GOGC/100, where live is the heap the last
// collection kept and roots the stacks and globals it scanned, and its
// minimum heap, 4 MiB×GOGC/100.
func Percent(live, roots, floor uint64) int {
	const minHeap = 4 << 20 // the runtime's defaultHeapMinimum
	if floor <= live {
		return 100
	}
	p := floor * 100 / minHeap
	if base := live + roots; base > 0 {
		p = min(p, (floor-live)*100/base)
	}
	return int(max(p, 100))
}

// Run holds the heap goal at or above floor bytes until ctx ends, then
// puts GOGC back as it found it. It returns at once, and does nothing (and
// reports false) when floor is 0 or GOGC is set in the environment.
//
// After every collection it reads the live heap the collection found and
// sets GOGC from it (debug.SetGCPercent recomputes the current goal at
// once), so a live heap that grows is followed within one cycle.
func Run(ctx context.Context, floor uint64) bool {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return false
	}
	t := &tuner{floor: floor, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
	}}
	t.before = debug.SetGCPercent(t.percent())
	t.arm()
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(t.before)
	})
	return true
}

type tuner struct {
	floor  uint64
	before int

	mu      sync.Mutex
	stopped bool
	sample  []metrics.Sample
}

// percent reads what the last collection found; the caller holds t.mu or
// is the only user yet.
func (t *tuner) percent() int {
	metrics.Read(t.sample)
	var v [3]uint64
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return Percent(v[0], v[1]+v[2], t.floor)
}

// sentinel is allocated for one collection to find unreachable. It holds a
// pointer so that it is not batched with other tiny objects, whose memory
// may stay reachable.
type sentinel struct {
	_ *int
	_ [2]uint64
}

// arm registers afterGC to run once the next collection has run.
func (t *tuner) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *tuner) { t.afterGC() }, t)
}

func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	debug.SetGCPercent(t.percent()) // a heap-locked store, once a cycle
	t.arm()
}
