//go:build race

package core

// raceEnabled: the race detector slows every goroutine down, and with it
// the timing that bounds some tests depend on.
const raceEnabled = true
