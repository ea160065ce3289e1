package budget

import (
	"errors"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	z, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return z
}

func TestParsePeriod(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Period
		str  string
	}{
		{"hour", Period{Fixed, time.Hour}, "hour"},
		{"day", Period{Days, 24 * time.Hour}, "day"},
		{"week", Period{Days, 7 * 24 * time.Hour}, "7d"},
		{"month", Period{Kind: Month}, "month"},
		{"3d", Period{Days, 72 * time.Hour}, "3d"},
		{"30s", Period{Fixed, 30 * time.Second}, "30s"},
	} {
		got, err := ParsePeriod(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParsePeriod(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	for _, bad := range []string{"", "fortnight", "0d", "400d", "10ms", "-5s"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", bad)
		}
	}
}

func TestBoundsMonthDayAndFixed(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, berlin) }
	cases := []struct {
		name       string
		cfg        Config
		t          time.Time
		start, end time.Time
	}{
		{"month after reset day", Config{Period: Period{Kind: Month}, ResetDay: 15, ResetAt: 6 * time.Hour, Zone: berlin},
			at(2026, 3, 20, 12, 0), at(2026, 3, 15, 6, 0), at(2026, 4, 15, 6, 0)},
		{"month before reset day", Config{Period: Period{Kind: Month}, ResetDay: 15, ResetAt: 6 * time.Hour, Zone: berlin},
			at(2026, 1, 15, 5, 59), at(2025, 12, 15, 6, 0), at(2026, 1, 15, 6, 0)},
		{"day over a DST change is 23 hours", Config{Period: Period{Days, 24 * time.Hour}, ResetDay: 1, Zone: berlin},
			at(2026, 3, 29, 12, 0), at(2026, 3, 29, 0, 0), at(2026, 3, 30, 0, 0)},
		{"3 days from an anchor", Config{Period: Period{Days, 72 * time.Hour}, ResetDay: 1, Zone: berlin, Anchor: at(2026, 1, 1, 0, 0)},
			at(2026, 1, 8, 1, 0), at(2026, 1, 7, 0, 0), at(2026, 1, 10, 0, 0)},
		{"3 days before the anchor", Config{Period: Period{Days, 72 * time.Hour}, ResetDay: 1, Zone: berlin, Anchor: at(2026, 1, 1, 0, 0)},
			at(2025, 12, 31, 1, 0), at(2025, 12, 29, 0, 0), at(2026, 1, 1, 0, 0)},
		{"hour at minute 30", Config{Period: Period{Fixed, time.Hour}, ResetDay: 1, ResetAt: 30 * time.Minute, Zone: time.UTC},
			time.Date(2026, 5, 1, 10, 10, 0, 0, time.UTC), time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC), time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		s, e := c.cfg.bounds(c.t)
		if !s.Equal(c.start) || !e.Equal(c.end) {
			t.Errorf("%s: bounds(%v) = %v..%v, want %v..%v", c.name, c.t, s, e, c.start, c.end)
		}
		if c.t.Before(s) || !c.t.Before(e) {
			t.Errorf("%s: %v is not inside %v..%v", c.name, c.t, s, e)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	good := Default(1<<30, Period{Kind: Month})
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Config)
	}{
		{"allowance", func(c *Config) { c.Allowance = 0 }},
		{"period", func(c *Config) { c.Period = Period{} }},
		{"reset_day", func(c *Config) { c.ResetDay = 31 }},
		{"reset_at", func(c *Config) { c.ResetAt = 25 * time.Hour }},
		{"reserve", func(c *Config) { c.Reserve = c.Allowance }},
		{"stop_percent.background", func(c *Config) { c.Shares[5] = 1.5 }},
		{"economy_percent", func(c *Config) { c.Economy = 2 }},
	} {
		cfg := Default(1<<30, Period{Kind: Month})
		c.edit(&cfg)
		var fe *FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("edit of %s: Validate = %v, want a FieldError naming it", c.field, err)
		}
	}
}
