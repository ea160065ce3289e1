package core

import "testing"

// CountChunks counts the chunks holding agent's data in s, for the store
// suite's checks that nothing is left behind (store_suite_test.go).
func CountChunks(t testing.TB, s *Store, agent string) int { return countChunks(t, s, agent) }

// WithoutBackgroundFold returns c for a store whose journal is folded
// only by reads, Fold and Open (store_journal.go), not by its goroutine.
func WithoutBackgroundFold(c Config) Config {
	c.foldOff = true
	return c
}
