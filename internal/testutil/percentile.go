package testutil

import (
	"math"
	"slices"
)

// Percentile is the p-quantile of v by nearest rank (p in [0, 1]), NaN
// when v is empty. v is not changed.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
