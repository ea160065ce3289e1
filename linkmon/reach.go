package linkmon

import "time"

// Whether the link answers at all (docs/linkmon.md, "Reachability"): a
// QUIC connection outlives an outage by its idle timeout, so "connected"
// alone says nothing about the link. The classifier knows: more than
// MaxMissed consecutive stale samples spanning MinOutage since the last
// answer is the outage rule that makes the class intermittent. Status
// carries it as DownSince, so what the agent shows and the class agree.

// downSince returns the time of the last answered sample while the link
// counts as down by the outage rule, and nil while it answers (or has not
// missed long enough). A link intermittent for its loss is answering and
// not down.
func (c *Classifier) downSince() *time.Time {
	if c.missed <= c.cfg.MaxMissed || c.lastAt.Sub(c.lastFresh) < c.cfg.MinOutage {
		return nil
	}
	t := c.lastFresh
	return &t
}
