package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// maxSize bounds ParseSize: sizes are summed and doubled in places, so half
// of int64's range leaves room.
const maxSize = math.MaxInt64 / 2

// ParseSize reads a byte size: a plain number of bytes ("1048576"), or a
// number with a unit, binary (KiB, MiB, GiB, TiB) or decimal (KB, MB, GB,
// TB), case-insensitive, with or without a space: "64KiB", "1 GiB", "10MB",
// "1.5MiB". A bare K, M, G or T is binary ("4k" is 4096).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	// go-humanize reads a bare "k" as 1000; edge-sync's config files have
	// always meant 1024 by it, and a file must not change meaning.
	if n := len(t); n >= 2 && strings.ContainsRune("kKmMgGtT", rune(t[n-1])) && strings.ContainsRune("0123456789. ", rune(t[n-2])) {
		t += "i"
	}
	n, err := humanize.ParseBytes(t)
	if err != nil || n > maxSize {
		return 0, fmt.Errorf("want a size like 1048576, \"64KiB\" or \"1GiB\", got %q", s)
	}
	return int64(n), nil
}

// binaryUnits are FormatBytes's units above bytes.
var binaryUnits = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// FormatBytes renders n bytes for people with a binary unit: "512 B",
// "1.5 KiB", "64 KiB", "11.7 MiB", "256 KiB": whole units when exact, else
// one decimal below 100 of a unit (go-humanize rounds to whole units from
// 10 up, and 12025 KiB is not "12 MiB"), whole units from 100 up.
// ParseSize reads it back to that precision.
func FormatBytes(n int64) string {
	if n < 0 {
		return "-" + formatBytes(uint64(-(n+1))+1)
	}
	return formatBytes(uint64(n))
}

func formatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, i, unit := float64(n)/1024, 0, uint64(1024)
	for v >= 1024 && i < len(binaryUnits)-1 {
		v, i, unit = v/1024, i+1, unit*1024
	}
	if n%unit == 0 {
		return strconv.FormatUint(n/unit, 10) + " " + binaryUnits[i] // exact: "64 KiB"
	}
	if v < 99.95 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + binaryUnits[i]
	}
	if r := math.Round(v); r < 1024 || i == len(binaryUnits)-1 {
		return strconv.FormatFloat(r, 'f', 0, 64) + " " + binaryUnits[i]
	}
	return "1.0 " + binaryUnits[i+1] // 1023.6 KiB
}

// FormatBitRate renders bps (bit/s) with the unit that keeps it readable:
// "64 kbit/s", "0.7 Mbit/s", "12.5 Mbit/s", "120 Mbit/s", "1.5 Gbit/s".
// Rates from 0.1 Mbit/s up are in Mbit/s, the unit of the link classes'
// thresholds.
func FormatBitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return trimFloat(bps/1e9) + " Gbit/s"
	case bps >= 1e5:
		return trimFloat(bps/1e6) + " Mbit/s"
	default:
		return trimFloat(bps/1e3) + " kbit/s"
	}
}

// trimFloat prints v with three significant figures at most and no
// trailing zeros.
func trimFloat(v float64) string {
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
