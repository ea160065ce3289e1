package linkmon

import (
	"encoding/json"
	"fmt"
	"strings"

	edgesync "github.com/edge-sync/edge-sync"
)

// SummarySet is the set of ordinary priorities whose ops send their
// summary first under summary-first parameters (SyncParameters.SummaryOnly);
// their full data follows as backfill (docs/backfill.md). Critical and
// schema ops go in full at once and are never in the set. In JSON it is a
// list of priority names, ["normal", "analytics", "background"].
type SummarySet uint8

// DefaultSummaries is the set of every class's profile: normal, analytics
// and background send summaries first where the class says so
// (satellite); high goes in full.
const DefaultSummaries = SummarySet(1<<edgesync.Normal | 1<<edgesync.Analytics | 1<<edgesync.Background)

// summarizable are the priorities a SummarySet may hold.
var summarizable = []edgesync.Priority{edgesync.High, edgesync.Normal, edgesync.Analytics, edgesync.Background}

// NewSummarySet returns the set of ps; critical or schema is an error that
// says they always go in full.
func NewSummarySet(ps ...edgesync.Priority) (SummarySet, error) {
	var s SummarySet
	for _, p := range ps {
		switch {
		case !p.Valid():
			return 0, fmt.Errorf("%w: summary priority %d is unknown", ErrInvalidConfig, uint8(p))
		case p.SendsAtOnce():
			return 0, fmt.Errorf("%w: summary priority %s: critical and schema ops always go in full at once; list high, normal, analytics or background", ErrInvalidConfig, p)
		}
		s |= 1 << p
	}
	return s, nil
}

// ParseSummarySet reads priority names ("normal", "background").
func ParseSummarySet(names []string) (SummarySet, error) {
	ps := make([]edgesync.Priority, 0, len(names))
	for _, n := range names {
		p, err := edgesync.ParsePriority(n)
		if err != nil {
			return 0, fmt.Errorf("%w: summary priorities: %v", ErrInvalidConfig, err)
		}
		ps = append(ps, p)
	}
	return NewSummarySet(ps...)
}

// Has reports whether ops of priority p send a summary first.
func (s SummarySet) Has(p edgesync.Priority) bool { return p.Valid() && s&(1<<p) != 0 }

// Priorities lists the set's priorities, most urgent first; never nil.
func (s SummarySet) Priorities() []edgesync.Priority {
	out := []edgesync.Priority{}
	for _, p := range summarizable {
		if s.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// String renders the set as "normal,analytics,background", or "none".
func (s SummarySet) String() string {
	ps := s.Priorities()
	if len(ps) == 0 {
		return "none"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	return strings.Join(names, ",")
}

// MarshalJSON writes the set as a list of priority names.
func (s SummarySet) MarshalJSON() ([]byte, error) { return json.Marshal(s.Priorities()) }

// UnmarshalJSON reads a list of priority names (or numbers).
func (s *SummarySet) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("%w: summary priorities: want a list of priority names, e.g. [\"analytics\", \"background\"]: %v", ErrInvalidConfig, err)
	}
	v, err := ParseSummarySet(names)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// SummaryFirst reports whether an op of priority p sends its summary first
// under p's parameters.
func (p SyncParameters) SummaryFirst(prio edgesync.Priority) bool {
	return p.SummaryOnly && p.Summaries.Has(prio)
}
