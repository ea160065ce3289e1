package config

import (
	"errors"
	"fmt"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
)

// rawBudget is an endpoint's budget block (docs/budget.md#configuration).
type rawBudget struct {
	Allowance   *string            `hcl:"allowance,optional"`
	Period      *string            `hcl:"period,optional"`
	ResetDay    *int               `hcl:"reset_day,optional"`
	ResetAt     *string            `hcl:"reset_at,optional"`
	Zone        *string            `hcl:"zone,optional"`
	Anchor      *string            `hcl:"anchor,optional"`
	Reserve     *string            `hcl:"reserve,optional"`
	ReservePct  *float64           `hcl:"reserve_percent,optional"`
	Shares      map[string]float64 `hcl:"stop_percent,optional"`
	EconomyPct  *float64           `hcl:"economy_percent,optional"`
	SummaryPct  *float64           `hcl:"summary_band_percent,optional"`
	PersistStep *string            `hcl:"persist_step,optional"`
	Classes     []rawBudgetClass   `hcl:"class,block"`
}

type rawBudgetClass struct {
	Class     string  `hcl:"class,label"`
	Allowance *string `hcl:"allowance,optional"`
}

// apply reads the budget block, converting its sizes, percentages, time
// of day and zone once; p is the block's path ending in ".".
func (r *rawBudget) apply(l *errorList, p string) *budget.Config {
	if r.Allowance == nil {
		l.addf(p+"allowance", `is required: the bytes a period allows, e.g. allowance = "50GiB"`)
	}
	if r.Period == nil {
		l.addf(p+"period", `is required: hour, day, week, month, a number of days such as "7d", or a duration such as "30s"`)
	}
	var period budget.Period
	if r.Period != nil {
		var err error
		if period, err = budget.ParsePeriod(*r.Period); err != nil {
			l.add(p+"period", err)
		}
	}
	c := budget.Default(parseSize(l, p+"allowance", r.Allowance, 0), period)
	c.ResetDay = pick(r.ResetDay, c.ResetDay)
	if r.ResetAt != nil {
		t, err := time.Parse("15:04", *r.ResetAt)
		if err != nil {
			l.addf(p+"reset_at", "want a time of day HH:MM such as \"00:00\", got %q", *r.ResetAt)
		}
		c.ResetAt = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	if r.Zone != nil {
		z, err := time.LoadLocation(*r.Zone)
		if err != nil {
			l.addf(p+"zone", "want an IANA time zone such as \"UTC\" or \"Europe/Oslo\", got %q", *r.Zone)
		}
		c.Zone = z
	}
	if r.Anchor != nil {
		t, err := time.Parse(time.RFC3339, *r.Anchor)
		if err != nil {
			l.addf(p+"anchor", "want an RFC 3339 time such as \"2026-01-01T00:00:00Z\", got %q", *r.Anchor)
		}
		c.Anchor = t
	}
	switch {
	case r.Reserve != nil && r.ReservePct != nil:
		l.addf(p+"reserve", "give reserve or reserve_percent, not both")
	case r.Reserve != nil:
		c.Reserve = parseSize(l, p+"reserve", r.Reserve, c.Reserve)
	case r.ReservePct != nil:
		c.Reserve = int64(*r.ReservePct / percent * float64(c.Allowance))
	}
	for name, v := range r.Shares {
		pr, err := edgesync.ParsePriority(name)
		if err != nil || pr.SendsAtOnce() {
			l.addf(p+"stop_percent."+name, "want high, normal, analytics or background (critical and schema stop only at the whole allowance)")
			continue
		}
		c.Shares[pr] = v / percent
	}
	c.Economy = fromPercent(r.EconomyPct, c.Economy)
	c.SummaryBand = fromPercent(r.SummaryPct, c.SummaryBand)
	c.PersistStep = parseSize(l, p+"persist_step", r.PersistStep, 0)
	for _, rc := range r.Classes {
		field := blockPath(p, "class", rc.Class)
		cl, err := edgesync.ParseLinkClass(rc.Class)
		if err != nil {
			l.add(field, err)
			continue
		}
		if rc.Allowance == nil {
			l.addf(field+".allowance", "is required")
			continue
		}
		c.Classes[cl] = parseSize(l, field+".allowance", rc.Allowance, 0)
	}
	return &c
}

// validateBudget reports a budget's bad field under the endpoint's path p
// (ending in ".").
func validateBudget(l *errorList, p string, c *budget.Config) {
	if c == nil {
		return
	}
	if err := c.Validate(); err != nil {
		var fe *budget.FieldError
		if errors.As(err, &fe) {
			l.add(p+"budget."+fe.Field, errors.New(fe.Msg))
			return
		}
		l.add(p+"budget", fmt.Errorf("%w", err))
	}
}
