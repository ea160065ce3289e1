//go:build race

package linksim

const raceEnabled = true
