package units

import (
	"testing"

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
		12025 << 10: "12 MiB", 1 << 30: "1.0 GiB", 3 << 40: "3.0 TiB", -2048: "-2.0 KiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	// What FormatBytes prints, ParseSize reads back (to its precision).
	for _, n := range []int64{0, 100, 64 << 10, 16 << 20, 1 << 30} {
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
