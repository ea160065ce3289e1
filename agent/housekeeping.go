package agent

import (
	"context"
	"time"
)

// housekeeping expires ops past their TTL and logs what the outbox drops.
func (a *Agent) housekeeping(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	drops := a.ob.Drops()
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-drops:
			if !ok {
				return
			}
			a.log.Named("outbox").Info("op dropped", "op", d.ID.String(), "key", d.Key,
				"priority", d.Priority.String(), "reason", d.Reason.String())
		case <-t.C:
			if _, err := a.ob.PurgeExpired(time.Now()); err != nil {
				a.log.Warn("expiring ops failed", "error", err)
			}
		}
	}
}
