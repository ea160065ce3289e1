package lane

import (
	"testing"

	"pgregory.net/rapid"
)

// TestRangeSetModel checks rangeSet against a map: membership, order,
// disjointness, and the floor when ranges are dropped.
func TestRangeSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rangeSet{max: rapid.IntRange(1, 8).Draw(t, "max")}
		model := map[uint64]bool{}
		for range rapid.IntRange(1, 200).Draw(t, "n") {
			v := rapid.Uint64Range(0, 60).Draw(t, "v")
			want := !model[v] && v >= s.floor
			if got := s.add(v); got != want {
				t.Fatalf("add(%d) = %v, want %v (set %v floor %d)", v, got, want, s.r, s.floor)
			}
			if want {
				model[v] = true
			}
			for i, r := range s.r {
				if r.lo > r.hi || (i > 0 && s.r[i-1].hi+1 >= r.lo) {
					t.Fatalf("ranges not ascending and disjoint: %v", s.r)
				}
			}
			if len(s.r) > s.max {
				t.Fatalf("%d ranges, max %d", len(s.r), s.max)
			}
			for x := uint64(0); x <= 60; x++ {
				if x >= s.floor && s.has(x) != model[x] {
					t.Fatalf("has(%d) = %v, model %v; set %v floor %d", x, s.has(x), model[x], s.r, s.floor)
				}
			}
		}
	})
}
