package agent

import (
	"context"
	"sync"
	"time"

	"github.com/edge-sync/edge-sync/outbox"
)

// dropSubs fans the outbox's one Drops channel out to every subscriber;
// a subscriber that does not keep up loses drops (counted), never blocks
// the agent.
type dropSubs struct {
	mu   sync.Mutex
	subs map[chan outbox.Drop]struct{}
	lost uint64
}

// SubscribeDrops returns a channel of every op the outbox drops without an
// ack (capacity, expiry, superseded) and a function that ends the
// subscription. The channel holds up to 1024 drops; past that, drops are
// lost to this subscriber only.
func (a *Agent) SubscribeDrops() (<-chan outbox.Drop, func()) {
	ch := make(chan outbox.Drop, 1024)
	a.drops.mu.Lock()
	if a.drops.subs == nil {
		a.drops.subs = map[chan outbox.Drop]struct{}{}
	}
	a.drops.subs[ch] = struct{}{}
	a.drops.mu.Unlock()
	return ch, func() {
		a.drops.mu.Lock()
		delete(a.drops.subs, ch)
		a.drops.mu.Unlock()
	}
}

func (d *dropSubs) publish(dr outbox.Drop) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.subs {
		select {
		case ch <- dr:
		default:
			d.lost++
		}
	}
}

// housekeeping expires ops past their TTL, logs what the outbox drops and
// hands drops to subscribers. It is the only reader of the outbox's Drops
// channel.
func (a *Agent) housekeeping(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	drops := a.ob.Drops()
	log := a.log.Named("outbox")
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-drops:
			if !ok {
				return
			}
			switch d.Reason {
			case outbox.ReasonSuperseded:
				log.Debug("op superseded by a newer version", "op", d.ID.String(), "key", d.Key)
			case outbox.ReasonDamaged:
				// The outbox logged it, with the reason, as an error.
			default:
				log.Info("op dropped", "op", d.ID.String(), "key", d.Key,
					"priority", d.Priority.String(), "reason", d.Reason.String())
			}
			a.drops.publish(d)
		case <-t.C:
			if _, err := a.ob.PurgeExpired(time.Now()); err != nil {
				a.log.Warn("expiring ops failed", "error", err)
			}
			a.expireExternal()
		}
	}
}
