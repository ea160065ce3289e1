//go:build race

package agent

// raceEnabled: the race detector slows every goroutine down, and with it
// the figures a test of what the link monitor reads under load depends on.
const raceEnabled = true
