package strategy

import (
	"testing"
	"time"
)

// TestBatcher: a batch much faster than the target doubles the next one
// (up to the cap), a slower one shrinks it in proportion (down to the
// floor), one near the target keeps it.
func TestBatcher(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, max int
		took      time.Duration
		want      int
	}{
		{"fast doubles", 1000, pruneMaxBatch, 5 * time.Millisecond, 2000},
		{"fast stops at the cap", 40_000, pruneMaxBatch, 5 * time.Millisecond, pruneMaxBatch},
		{"near the target keeps", 1000, pruneMaxBatch, 40 * time.Millisecond, 1000},
		{"slow shrinks in proportion", 8000, pruneMaxBatch, 200 * time.Millisecond, 2000},
		{"very slow stops at the floor", 1000, pruneMaxBatch, 10 * time.Second, pruneMinBatch},
		{"floor never above the cap", 50, 50, 10 * time.Second, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			var st PruneStats
			b := &batcher{size: c.size, max: c.max, stats: &st}
			b.took(c.took)
			if b.size != c.want {
				t.Fatalf("next size %d, want %d", b.size, c.want)
			}
			over := 0
			if c.took > pruneBound {
				over = 1
			}
			if st.Batches != 1 || st.Longest != c.took || st.Over != over {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}
