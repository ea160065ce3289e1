package jsstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestGroupOfManyWrites: streams of 64 ops from 1,000 agents at once put
// thousands of writes in one connection's group. A group sent whole went
// past nats.go's 4,000 unacknowledged asynchronous publishes and failed
// ops with "stalled with too many outstanding async published messages"
// (BenchmarkCoreIngest, 1,000 agents); a group is sent in parts now.
func TestGroupOfManyWrites(t *testing.T) {
	srv := natstest.Run(t)
	// 50 s for each step: the race detector slows 64,000 ops past the
	// default timeout, which this test is not about.
	s := openWith(t, Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, Timeout: 50 * time.Second})
	const agents, per = 1000, 64
	var wg sync.WaitGroup
	errs := make(chan error, agents*per)
	for a := range agents {
		ops := make([]core.WholeOp, per)
		for i := range ops {
			d := storetest.Payload(uint64(a*per+i), 200)
			ops[i] = core.WholeOp{Header: storetest.Header(storetest.OpID(uint64(a*per+i+1)), edgesync.EventOp, "log", d), Data: d}
		}
		wg.Go(func() {
			for i, r := range s.ApplyWholeOps(fmt.Sprintf("agent-%d", a), ops) {
				if r.Err != nil {
					errs <- fmt.Errorf("agent %d op %d: %w", a, i, r.Err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d ops failed", n, agents*per)
	}
}
