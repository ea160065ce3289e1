package budget

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/units"
)

// Config is one endpoint's data budget. Sizes are bytes, shares are
// fractions (0.5 is 50 %); the config package converts the file's units
// once (docs/budget.md#configuration).
type Config struct {
	// Allowance is the bytes the endpoint may send per period, counted as
	// UDP payload leaving the agent's socket.
	Allowance int64 `json:"allowance"`
	// Period is how long an allowance lasts before it is renewed.
	Period Period `json:"period"`
	// ResetAt is the time of day, after midnight in Zone, at which a day
	// or month period starts (and the minute past the hour of an hourly
	// one). Default 0 (midnight).
	ResetAt time.Duration `json:"reset_at_ns"`
	// ResetDay is the day of the month a monthly period starts (1-28).
	// Default 1.
	ResetDay int `json:"reset_day"`
	// Zone is the IANA time zone periods are counted in; nil means UTC.
	Zone *time.Location `json:"-"`
	// Anchor is a start of some period of a fixed length (N days or a
	// duration); periods follow it back and forth. Zero means midnight of
	// 1 January 1970 in Zone, plus ResetAt.
	Anchor time.Time `json:"anchor"`
	// Reserve is the part of the allowance only critical and schema ops
	// may spend. Default 5 % of Allowance.
	Reserve int64 `json:"reserve"`
	// Shares is, by priority, the share of the allowance outside the
	// reserve at which that priority stops sending. Critical and schema
	// stop only when the whole allowance is spent; their entries are
	// ignored. Defaults: high 1, normal 0.9, analytics 0.7, background 0.5.
	Shares [edgesync.NumPriorities]float64 `json:"shares"`
	// Economy is the share of the allowance from which every op goes in
	// the cheapest encoding (best compression, deltas). Default 0.4.
	Economy float64 `json:"economy"`
	// SummaryBand is the part of the allowance before a priority's stop in
	// which its ops send only their summary. Default 0.05.
	SummaryBand float64 `json:"summary_band"`
	// Classes optionally limits what may be spent while the link is of a
	// class, on top of the whole allowance: the same shares apply to it.
	Classes map[edgesync.LinkClass]int64 `json:"classes"`
	// PersistStep is how far ahead of the bytes sent the spend on disk is
	// kept: after a crash the budget counts at most this many bytes (plus
	// the datagrams being written at the time) it never sent, and never
	// fewer than it sent. Default max(64 KiB, Allowance/1000).
	PersistStep int64 `json:"persist_step"`
}

// DefaultShares are the shares at which each priority stops.
func DefaultShares() [edgesync.NumPriorities]float64 {
	return [edgesync.NumPriorities]float64{
		edgesync.Critical: 1, edgesync.Schema: 1, edgesync.High: 1,
		edgesync.Normal: 0.9, edgesync.Analytics: 0.7, edgesync.Background: 0.5,
	}
}

// Default returns a budget of allowance bytes a period with the default
// shares, reserve and reset time.
func Default(allowance int64, period Period) Config {
	return Config{
		Allowance: allowance, Period: period, ResetDay: 1, Reserve: allowance / 20,
		Shares: DefaultShares(), Economy: 0.4, SummaryBand: 0.05, Classes: map[edgesync.LinkClass]int64{},
	}
}

// step is the persist step in force.
func (c *Config) step() int64 {
	if c.PersistStep > 0 {
		return c.PersistStep
	}
	return max(64<<10, c.Allowance/1000)
}

func (c *Config) zone() *time.Location {
	if c.Zone == nil {
		return time.UTC
	}
	return c.Zone
}

// Validate reports the first bad field, naming it as the config file
// does.
func (c *Config) Validate() error {
	switch {
	case c.Allowance <= 0:
		return fieldErr("allowance", "must be a positive size such as 10GiB, got %d bytes", c.Allowance)
	case c.Period.Kind == 0 || (c.Period.Kind != Month && c.Period.Length <= 0):
		return fieldErr("period", `is required: hour, day, month, a number of days such as "7d", or a duration such as "30s"`)
	case c.ResetAt < 0 || c.ResetAt >= 24*time.Hour:
		return fieldErr("reset_at", "must be a time of day HH:MM, got %v", c.ResetAt)
	case c.ResetDay < 1 || c.ResetDay > 28:
		return fieldErr("reset_day", "must be 1-28 (every month has it), got %d", c.ResetDay)
	case c.Reserve < 0 || c.Reserve >= c.Allowance:
		return fieldErr("reserve", "must be at least 0 and less than the allowance (%s), got %s",
			units.FormatBytes(c.Allowance), units.FormatBytes(c.Reserve))
	case !(c.Economy >= 0 && c.Economy <= 1):
		return fieldErr("economy_percent", "must be 0-100, got %v", c.Economy*100)
	case !(c.SummaryBand >= 0 && c.SummaryBand < 1):
		return fieldErr("summary_band_percent", "must be 0-99, got %v", c.SummaryBand*100)
	case c.PersistStep < 0:
		return fieldErr("persist_step", "must not be negative")
	}
	for _, p := range []edgesync.Priority{edgesync.High, edgesync.Normal, edgesync.Analytics, edgesync.Background} {
		if s := c.Shares[p]; !(s > 0 && s <= 1) || math.IsNaN(s) {
			return fieldErr("stop_percent."+p.String(), "must be a share in (0, 100] percent, got %v", s*100)
		}
	}
	for cl, n := range c.Classes {
		if !cl.Valid() || n <= 0 {
			return fieldErr("class."+cl.String(), "allowance must be a positive size, got %d bytes", n)
		}
	}
	return nil
}

// FieldError names a bad field of a budget's config.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// PeriodKind is how a period's length is counted.
type PeriodKind uint8

// Period kinds.
const (
	// Fixed periods have a length in time (hourly, or a duration for tests
	// and trials), following Anchor.
	Fixed PeriodKind = iota + 1
	// Days periods are a number of calendar days in the zone, starting at
	// ResetAt.
	Days
	// Month periods are calendar months from ResetDay at ResetAt.
	Month
)

// Period is a budget's period: a calendar month, N calendar days, or a
// fixed duration.
type Period struct {
	Kind PeriodKind
	// Length is the duration of a Fixed period; Days periods are
	// Length/24h days long.
	Length time.Duration
}

// ParsePeriod reads "hour", "day", "week", "month", "Nd" (N days) or a Go
// duration ("30s", "6h").
func ParsePeriod(s string) (Period, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "hour", "hourly":
		return Period{Kind: Fixed, Length: time.Hour}, nil
	case "day", "daily":
		return Period{Kind: Days, Length: 24 * time.Hour}, nil
	case "week", "weekly":
		return Period{Kind: Days, Length: 7 * 24 * time.Hour}, nil
	case "month", "monthly":
		return Period{Kind: Month}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 1 || d > 366 {
			return Period{}, fmt.Errorf("period %q: want 1d-366d", s)
		}
		return Period{Kind: Days, Length: time.Duration(d) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return Period{}, fmt.Errorf(`period %q: want hour, day, week, month, a number of days such as "7d", or a duration of at least 1s such as "30s"`, s)
	}
	return Period{Kind: Fixed, Length: d}, nil
}

// String renders p as ParsePeriod reads it.
func (p Period) String() string {
	switch p.Kind {
	case Month:
		return "month"
	case Days:
		if p.Length == 24*time.Hour {
			return "day"
		}
		return strconv.Itoa(int(p.Length/(24*time.Hour))) + "d"
	case Fixed:
		if p.Length == time.Hour {
			return "hour"
		}
		return p.Length.String()
	}
	return ""
}

// MarshalText renders the period for JSON.
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a period as ParsePeriod does.
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// bounds returns the period holding t: its start and its end.
func (c *Config) bounds(t time.Time) (start, end time.Time) {
	z := c.zone()
	t = t.In(z)
	hh, mm := int(c.ResetAt/time.Hour), int(c.ResetAt%time.Hour/time.Minute)
	switch c.Period.Kind {
	case Month:
		start = time.Date(t.Year(), t.Month(), c.ResetDay, hh, mm, 0, 0, z)
		if t.Before(start) {
			start = time.Date(t.Year(), t.Month()-1, c.ResetDay, hh, mm, 0, 0, z)
		}
		return start, time.Date(start.Year(), start.Month()+1, c.ResetDay, hh, mm, 0, 0, z)
	case Days:
		n := int(c.Period.Length / (24 * time.Hour))
		a := c.anchor().In(z)
		// Whole calendar days between the anchor's date and t's, counted
		// in UTC so that a DST change does not shift them.
		days := int(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Sub(
			time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
		k := floorDiv(days, n)
		at := func(k int) time.Time { return time.Date(a.Year(), a.Month(), a.Day()+k*n, hh, mm, 0, 0, z) }
		start = at(k)
		if t.Before(start) {
			k--
			start = at(k)
		}
		return start, at(k + 1)
	}
	a := c.anchor()
	k := t.Sub(a) / c.Period.Length
	start = a.Add(k * c.Period.Length)
	if t.Before(start) {
		start = start.Add(-c.Period.Length)
	}
	return start, start.Add(c.Period.Length)
}

func (c *Config) anchor() time.Time {
	if !c.Anchor.IsZero() {
		return c.Anchor
	}
	return time.Date(1970, 1, 1, 0, 0, 0, 0, c.zone()).Add(c.ResetAt)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
