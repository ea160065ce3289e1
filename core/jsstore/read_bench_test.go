package jsstore

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// BenchmarkReplicatedReads measures what a listing costs on a replicated
// store, where a scan that reads to its end asks the stream's leader for
// the last matching message (scan.go, catchUp): Events and Keys of an
// agent with 100 events and 100 keys, on a 3-node cluster with 3 replicas,
// against the same listings of a single-replica store in the same run
// (ratio-vs-r1). Alternate runs of the tree before the change for its
// cost.
//
//	go test -run '^$' -bench BenchmarkReplicatedReads -benchtime 200x -count 3 ./core/jsstore
func BenchmarkReplicatedReads(b *testing.B) {
	srv := natstest.Run(b)
	cl := natstest.RunCluster(b, 3)
	open := func(urls []string, replicas int) *Store {
		s := openWith(b, Config{URLs: urls, Replicas: replicas, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1})
		const agent, ops = "ship-7", 100
		for i := range uint64(ops) {
			data := storetest.Payload(i+1, 200)
			kind, key := edgesync.EventOp, "log"
			if i%2 == 1 {
				kind, key = edgesync.StateOp, fmt.Sprintf("k%03d", i)
			}
			if _, err := s.Apply(agent, storetest.Header(storetest.OpID(i+1), kind, key, data), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	r3, r1 := open(cl.URLs(), 3), open([]string{srv.URL()}, 1)
	list := func(s *Store) time.Duration {
		t0 := time.Now()
		evs, err := s.Events("ship-7", 0, 0)
		if err != nil || len(evs) != 50 {
			b.Fatalf("events: %d listed, want 50: %v", len(evs), err)
		}
		vs, err := s.Keys("ship-7", "", 0)
		if err != nil || len(vs) != 50 {
			b.Fatalf("keys: %d listed, want 50: %v", len(vs), err)
		}
		return time.Since(t0)
	}
	var t3, t1 time.Duration
	for b.Loop() {
		t3 += list(r3)
		t1 += list(r1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(t3.Microseconds())/n, "r3-µs/list")
	b.ReportMetric(float64(t1.Microseconds())/n, "r1-µs/list")
	b.ReportMetric(float64(t3)/float64(t1), "ratio-vs-r1")
}
