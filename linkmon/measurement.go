package linkmon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/units"
)

// Method says how a Measurement was taken.
type Method uint8

// The measurement methods.
const (
	// MethodActive is a measurement from probes the monitor sent itself
	// (pings, packet trains).
	MethodActive Method = iota + 1
	// MethodPassive is a measurement from real traffic (QUIC connection
	// statistics, the sender's delivery rate).
	MethodPassive
	// MethodBoth combines active and passive figures.
	MethodBoth
)

var methodNames = [...]string{"", "active", "passive", "both"}

// Valid reports whether m is a known method.
func (m Method) Valid() bool { return m >= MethodActive && m <= MethodBoth }

// String returns the method's name, e.g. "passive".
func (m Method) String() string {
	if m.Valid() {
		return methodNames[m]
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText implements encoding.TextMarshaler; the zero Method (not
// set, e.g. in a status with no samples) marshals as "".
func (m Method) MarshalText() ([]byte, error) {
	if m == 0 {
		return []byte{}, nil
	}
	if !m.Valid() {
		return nil, fmt.Errorf("marshal method: %w: %d", ErrInvalidMethod, uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Method) UnmarshalText(b []byte) error {
	t := strings.ToLower(strings.TrimSpace(string(b)))
	if t == "" {
		*m = 0
		return nil
	}
	for i, n := range methodNames {
		if i > 0 && n == t {
			*m = Method(i)
			return nil
		}
	}
	return fmt.Errorf("unmarshal method %q: %w (want active, passive or both)", string(b), ErrInvalidMethod)
}

// Measurement is one observation of a link. Zero figures mean "not measured
// in this sample": a light sample carries RTT and loss but often no
// bandwidth, a train-only sample carries bandwidth and no RTT. Durations
// marshal to JSON as integer nanoseconds (the field names say so).
type Measurement struct {
	// BandwidthBps is the estimated capacity in bit/s; 0 if not measured.
	BandwidthBps float64 `json:"bandwidth_bps"`
	// BandwidthLowerBound is true when BandwidthBps comes from an
	// app-limited sender: the link carries at least that much.
	BandwidthLowerBound bool `json:"bandwidth_lower_bound,omitempty"`
	// RTT is the round-trip time; 0 if not measured.
	RTT time.Duration `json:"rtt_ns"`
	// Jitter is the RTT variation (mean deviation); 0 if not measured.
	Jitter time.Duration `json:"jitter_ns"`
	// Loss is the packet loss ratio, 0..1.
	Loss float64 `json:"loss"`
	// At is when the measurement was completed.
	At time.Time `json:"at"`
	// Method says whether probes, real traffic or both produced it.
	Method Method `json:"method"`
	// Stale is true when the probe got no answer in time: the figures are
	// the last known ones and the sample counts as a missed one.
	Stale bool `json:"stale,omitempty"`
}

// String renders the measurement for logs, e.g.
// "12.5 Mbit/s rtt=42ms jitter=3ms loss=1.0% active".
func (m Measurement) String() string {
	var b strings.Builder
	if m.BandwidthBps > 0 {
		if m.BandwidthLowerBound {
			b.WriteString(">=")
		}
		b.WriteString(FormatBps(m.BandwidthBps))
	} else {
		b.WriteString("? Mbit/s")
	}
	fmt.Fprintf(&b, " rtt=%s jitter=%s loss=%.1f%%", fmtDur(m.RTT), fmtDur(m.Jitter), m.Loss*100)
	if m.Method.Valid() {
		b.WriteString(" " + m.Method.String())
	}
	if m.Stale {
		b.WriteString(" stale")
	}
	return b.String()
}

// Validate reports a measurement whose figures cannot be true.
func (m Measurement) Validate() error {
	switch {
	case m.BandwidthBps < 0 || m.BandwidthBps != m.BandwidthBps:
		return fmt.Errorf("measurement: %w: bandwidth_bps %v", ErrInvalidMeasurement, m.BandwidthBps)
	case m.RTT < 0:
		return fmt.Errorf("measurement: %w: rtt %v", ErrInvalidMeasurement, m.RTT)
	case m.Jitter < 0:
		return fmt.Errorf("measurement: %w: jitter %v", ErrInvalidMeasurement, m.Jitter)
	case !(m.Loss >= 0 && m.Loss <= 1):
		return fmt.Errorf("measurement: %w: loss %v not in 0..1", ErrInvalidMeasurement, m.Loss)
	case m.At.IsZero():
		return fmt.Errorf("measurement: %w: at is zero", ErrInvalidMeasurement)
	}
	return nil
}

// FormatBps renders a rate with a unit that keeps it readable, e.g.
// "0.7 Mbit/s", "120 Mbit/s", "1.5 Gbit/s", "64 kbit/s" (units.FormatBitRate).
func FormatBps(bps float64) string { return units.FormatBitRate(bps) }

// fmtDur renders a duration rounded to what a human compares: whole ms above
// 10 ms, 0.1 ms below.
func fmtDur(d time.Duration) string {
	if d >= 10*time.Millisecond || d <= -10*time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}
