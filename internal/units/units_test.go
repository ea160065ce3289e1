package units

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestParseSize covers what config files have accepted from the start
// (moved here from config with the parser).
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "1 GiB": 1 << 30, "10MB": 10e6, "1.5MiB": 3 << 19, "4k": 4 << 10,
		"4K": 4 << 10, "2 M": 2 << 20, "1g": 1 << 30, "1T": 1 << 40, "64kib": 64 << 10, "3kb": 3000, " 16MiB ": 16 << 20, "100b": 100,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1", "1XB", "NaN", "1e30GiB", "KiB", "k", "9000000TiB", "Inf"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1536: "1.5 KiB", 64 << 10: "64 KiB",
		12025 << 10: "11.7 MiB", 1 << 30: "1 GiB", 3 << 40: "3 TiB", -2048: "-2 KiB",
		99 << 20: "99 MiB", 100 << 20: "100 MiB", 256 << 10: "256 KiB", 1023<<10 + 700: "1.0 MiB",
		1<<63 - 1: "8.0 EiB", -1 << 63: "-8 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	// What FormatBytes prints, ParseSize reads back (to its precision).
	for _, n := range []int64{0, 100, 64 << 10, 16 << 20, 1 << 30, 256 << 10, 1536} {
		back, err := ParseSize(FormatBytes(n))
		if err != nil || back != n {
			t.Errorf("ParseSize(FormatBytes(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestFormatBitRate(t *testing.T) {
	for bps, want := range map[float64]string{
		64e3: "64 kbit/s", 1e5: "0.1 Mbit/s", 0.7e6: "0.7 Mbit/s", 1e6: "1 Mbit/s", 12.5e6: "12.5 Mbit/s",
		120e6: "120 Mbit/s", 1.5e9: "1.5 Gbit/s", 0: "0 kbit/s", 1.234e6: "1.23 Mbit/s",
	} {
		if got := FormatBitRate(bps); got != want {
			t.Errorf("FormatBitRate(%v) = %q, want %q", bps, got, want)
		}
	}
}

// TestParseDuration: Go's durations, and days and weeks, which config files
// were refused before (dedup_retention = "30d").
func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "500ms": 500 * time.Millisecond, "1.5h": 90 * time.Minute, "72h30m": 72*time.Hour + 30*time.Minute,
		"30d": 30 * Day, "2w": 2 * Week, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "1w2d3h4m": Week + 2*Day + 3*time.Hour + 4*time.Minute,
		" 10m ": 10 * time.Minute, "0d": 0, "-1d": -Day, "100us": 100 * time.Microsecond,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-", "d", "w", "30", "1x", "1d1w", "1w1w", "1..5d", "1d-5h", "999999999w", "30 days", "1D"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "30d") {
			t.Errorf("ParseDuration(%q): error %q does not say what is accepted", bad, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 250 * time.Millisecond: "250ms", 1500 * time.Millisecond: "1.5s", 42 * time.Second: "42s",
		192 * time.Second: "3m12s", 65 * time.Minute: "1h5m", 52 * time.Hour: "2d4h", 30 * Day: "30d",
		59*time.Minute + 59700*time.Millisecond: "1h", 59600 * time.Millisecond: "1m", 90 * time.Second: "1m30s",
		-8 * time.Second: "-8s", 1500 * time.Microsecond: "1.5ms", 10 * time.Minute: "10m",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	// What FormatDuration prints, ParseDuration reads back.
	for _, d := range []time.Duration{0, 250 * time.Millisecond, 42 * time.Second, 192 * time.Second, 52 * time.Hour, 30 * Day} {
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}
