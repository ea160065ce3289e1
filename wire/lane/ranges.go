package lane

// rangeSet is a set of numbers held as ascending, disjoint, non-adjacent
// inclusive ranges. It keeps at most max ranges: when a new range would
// exceed that, the lowest range is forgotten and floor rises above it, so
// numbers below floor count as present (for packet numbers: too old,
// treated as replays).
type rangeSet struct {
	r     []numRange
	floor uint64
	max   int
}

// has reports whether v is in the set or below its floor.
func (s *rangeSet) has(v uint64) bool {
	if v < s.floor {
		return true
	}
	// Search from the top: new numbers are near the top.
	for i := len(s.r) - 1; i >= 0; i-- {
		if v > s.r[i].hi {
			return false
		}
		if v >= s.r[i].lo {
			return true
		}
	}
	return false
}

// add inserts v; it reports false when v was present or below the floor.
func (s *rangeSet) add(v uint64) bool {
	if v < s.floor {
		return false
	}
	i := len(s.r) - 1
	for i >= 0 && s.r[i].lo > v {
		i--
	}
	// s.r[i].lo <= v (or i == -1) and s.r[i+1].lo > v.
	if i >= 0 && v <= s.r[i].hi {
		return false
	}
	joinLeft := i >= 0 && s.r[i].hi+1 == v
	joinRight := i+1 < len(s.r) && s.r[i+1].lo == v+1
	switch {
	case joinLeft && joinRight:
		s.r[i].hi = s.r[i+1].hi
		s.r = append(s.r[:i+1], s.r[i+2:]...)
	case joinLeft:
		s.r[i].hi = v
	case joinRight:
		s.r[i+1].lo = v
	default:
		s.r = append(s.r, numRange{})
		copy(s.r[i+2:], s.r[i+1:])
		s.r[i+1] = numRange{v, v}
		if s.max > 0 && len(s.r) > s.max {
			s.floor = s.r[0].hi + 1
			s.r = append(s.r[:0], s.r[1:]...)
		}
	}
	return true
}

// top returns up to n ranges, highest first.
func (s *rangeSet) top(dst []numRange, n int) []numRange {
	for i := len(s.r) - 1; i >= 0 && len(dst) < n; i-- {
		dst = append(dst, s.r[i])
	}
	return dst
}

// largest returns the largest number in the set.
func (s *rangeSet) largest() (uint64, bool) {
	if len(s.r) == 0 {
		return 0, false
	}
	return s.r[len(s.r)-1].hi, true
}
