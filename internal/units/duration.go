package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units ParseDuration adds to Go's: a day is 24 h and
// a week 7 days, whatever the calendar says (no daylight saving, no leap
// seconds: a retention of "30d" is 720 h).
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// ParseDuration reads a duration: anything time.ParseDuration reads
// ("500ms", "1.5h", "72h30m"), plus days and weeks, alone or leading
// ("30d", "2w", "1d12h", "1.5d"). A plain "0" is zero. The error says
// what is accepted.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(t, "-"); ok {
		neg, t = true, rest
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	var total time.Duration
	// Leading weeks and days, in that order, each at most once.
	for _, u := range []struct {
		suffix byte
		d      time.Duration
	}{{'w', Week}, {'d', Day}} {
		i := 0
		for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
			i++
		}
		if i == 0 || i >= len(t) || t[i] != u.suffix {
			continue
		}
		n, err := strconv.ParseFloat(t[:i], 64)
		if err != nil || n*float64(u.d) >= float64(maxDuration-total) {
			return 0, durationErr(s)
		}
		total += time.Duration(n * float64(u.d))
		t = t[i+1:]
	}
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
			return 0, durationErr(s)
		}
		if total > maxDuration-d {
			return 0, durationErr(s)
		}
		total += d
	} else if total == 0 && !strings.ContainsAny(s, "wd") {
		return 0, durationErr(s) // "" or "-"
	}
	if neg {
		total = -total
	}
	return total, nil
}

const maxDuration = time.Duration(1<<63 - 1)

func durationErr(s string) error {
	return fmt.Errorf("want a duration like \"500ms\", \"30s\", \"10m\", \"72h\", \"30d\" or \"2w\", got %q", s)
}

// FormatDuration renders d for people, in the units ParseDuration reads
// and with the two largest units that matter: "0s", "250ms", "1.5s", "42s",
// "3m12s", "1h5m", "2d4h", "30d". It rounds; ParseDuration reads the
// result back to that precision.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return trimFloat(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/float64(time.Millisecond)) + "ms"
	case d < 10*time.Second:
		return trimFloat(float64(d)/float64(time.Second)) + "s"
	case d.Round(time.Second) < time.Minute:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
	}
	// From a minute up: two units, the smaller rounded.
	units := []struct {
		name string
		d    time.Duration
	}{{"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	for i := 0; i < len(units)-1; i++ {
		big, small := units[i], units[i+1]
		r := d.Round(small.d) // 59m59.7s is 1h, not 60m
		if r < big.d {
			continue
		}
		n, rest := r/big.d, (r%big.d)/small.d
		if rest == 0 {
			return strconv.FormatInt(int64(n), 10) + big.name
		}
		return strconv.FormatInt(int64(n), 10) + big.name + strconv.FormatInt(int64(rest), 10) + small.name
	}
	return d.String()
}
