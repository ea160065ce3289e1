//go:build !race

package linksim

const raceEnabled = false
