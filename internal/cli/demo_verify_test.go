package cli

import (
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestDropReason: a missing op is reported as dropped only when the
// outbox dropped it (the zero reason read as "capacity" before).
func TestDropReason(t *testing.T) {
	var dropped, kept edgesync.OpID
	dropped[0], kept[0] = 1, 2
	d := &demo{dropped: map[edgesync.OpID]outbox.Reason{dropped: outbox.ReasonExpired}}
	if got := d.dropReason(kept); got != "not dropped by the outbox" {
		t.Errorf("an op never dropped: %q", got)
	}
	if got, want := d.dropReason(dropped), "dropped by the outbox: "+outbox.ReasonExpired.String(); got != want {
		t.Errorf("an expired op: %q, want %q", got, want)
	}
}
