package config

import (
	edgesync "github.com/edge-sync/edge-sync"
)

// parseSummaryPriorities reads a profile's summary_priorities: nil when
// absent, an empty list when it names none.
func parseSummaryPriorities(l *errorList, field string, names *[]string) []edgesync.Priority {
	if names == nil {
		return nil
	}
	out := make([]edgesync.Priority, 0, len(*names))
	for _, n := range *names {
		p, err := edgesync.ParsePriority(n)
		if err != nil {
			l.add(field, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// validateSummaries refuses critical and schema in summary_priorities:
// they always go in full at once.
func (p Profile) validateSummaries(l *errorList, prefix string) {
	for _, q := range p.SummaryPriorities {
		if !q.Valid() || q.SendsAtOnce() {
			l.addf(prefix+"summary_priorities", "%s ops always go in full at once; list high, normal, analytics or background", q)
		}
	}
}
