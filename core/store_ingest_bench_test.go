package core

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// BenchmarkStoreIngest is the store's share of BenchmarkCoreIngest
// (core/jsstore): N agents, each one writer, apply small events with
// ApplyWhole (the server's path for an op of one chunk), with no network
// in front, beside raw bbolt Batch puts of the same payloads by as many
// writers in another file, in the same run. ratio-vs-raw is the store's
// ops/s over the raw puts'; pages/op and raw-pages/op count the pages
// each writes per op, which with fsync sets a commit's cost. Each
// agent's first op is not measured (it creates the agent's buckets; a
// fleet's agents have stored before), and a store with a journal folds
// it at the end of the measured part (docs/core.md, "The journal").
//
//	go test -run '^$' -bench BenchmarkStoreIngest -benchtime 3000x -count 3 ./core
func BenchmarkStoreIngest(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchStoreIngest(b, n) })
	}
}

func benchStoreIngest(b *testing.B, agents int) {
	const opBytes = 512
	dir := b.TempDir()
	s, err := Open(filepath.Join(dir, "core.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("raw")); return err }); err != nil {
		b.Fatal(err)
	}
	var data [][]byte
	for i := range 64 {
		data = append(data, payload(uint64(i), opBytes))
	}
	hdrs := make([]PartialHeader, 64)
	for i := range hdrs {
		hdrs[i] = hdrFor(edgesync.OpID{}, edgesync.EventOp, "bench/events", data[i])
	}
	run := func(op func(i, w int) error) time.Duration {
		start := time.Now()
		if err := testutil.Share(b.N, agents, op); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	names := make([]string, agents)
	for w := range names {
		names[w] = fmt.Sprintf("agent-%d", w)
	}
	// A fleet's agents have stored before: each agent's first op (which
	// creates its buckets) and the raw file's as many puts are not
	// measured.
	var warm sync.WaitGroup
	for w := range agents {
		warm.Go(func() {
			h := hdrs[0]
			h.OpID = opID(uint64(1<<40 + w))
			if _, err := s.ApplyWhole(names[w], h, data[0]); err != nil {
				b.Error(err)
			}
			k := binary.BigEndian.AppendUint64(nil, uint64(1<<40+w))
			if err := raw.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte("raw")).Put(k, data[0]) }); err != nil {
				b.Error(err)
			}
		})
	}
	warm.Wait()
	// A store with a journal (format 3) folds it into the agents' buckets
	// later; the benchmark counts that fold, at its end.
	folder, _ := any(s).(interface{ Fold() error })
	if folder != nil {
		if err := folder.Fold(); err != nil {
			b.Fatal(err)
		}
	}
	storePages, rawPages := pagesWritten(s.db), pagesWritten(raw)
	b.ResetTimer()
	storeT := run(func(i, w int) error {
		h := hdrs[i%64]
		h.OpID = opID(uint64(i) + 1)
		_, err := s.ApplyWhole(names[w], h, data[i%64])
		return err
	})
	if folder != nil {
		start := time.Now()
		if err := folder.Fold(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "fold-ms")
		b.ReportMetric(float64(storeT.Microseconds())/1000, "journal-ms")
		storeT += time.Since(start)
	}
	b.StopTimer()
	rawT := run(func(i, _ int) error {
		k := binary.BigEndian.AppendUint64(nil, uint64(i))
		return raw.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte("raw")).Put(k, data[i%64]) })
	})
	storePages = pagesWritten(s.db) - storePages
	rawPages = pagesWritten(raw) - rawPages
	b.ReportMetric(float64(storePages)/float64(b.N), "pages/op")
	b.ReportMetric(float64(rawPages)/float64(b.N), "raw-pages/op")
	storeRate, rawRate := float64(b.N)/storeT.Seconds(), float64(b.N)/rawT.Seconds()
	b.ReportMetric(storeRate, "ops/s")
	b.ReportMetric(rawRate, "raw-ops/s")
	b.ReportMetric(storeRate/rawRate, "ratio-vs-raw")
}

// pagesWritten is the count of pages db's write transactions wrote.
func pagesWritten(db *bolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetPageCount()
}

// BenchmarkStoreReadWhileIngest: how long `core tail --follow` and
// `core ls` wait while N agents send small events as in
// BenchmarkStoreIngest: one reader asks for agent 0's new events every
// 100 ms (as tail --follow polls) and reports the longest and the mean
// of those reads; with the journal each read folds it first.
//
//	go test -run '^$' -bench BenchmarkStoreReadWhileIngest -benchtime 20000x -count 2 ./core
func BenchmarkStoreReadWhileIngest(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchReadWhileIngest(b, n) })
	}
}

func benchReadWhileIngest(b *testing.B, agents int) {
	s, err := Open(filepath.Join(b.TempDir(), "core.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := payload(1, 512)
	h0 := hdrFor(edgesync.OpID{}, edgesync.EventOp, "bench/events", data)
	names := make([]string, agents)
	for w := range names {
		names[w] = fmt.Sprintf("agent-%d", w)
	}
	stop := make(chan struct{})
	var reads []time.Duration
	var readErr error
	b.ResetTimer()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		from := uint64(0)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for first := true; ; first = false {
			if !first {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
			t0 := time.Now()
			evs, err := s.Events(names[0], from, 0)
			if err != nil && !isNotFound(err) {
				readErr = err
				return
			}
			reads = append(reads, time.Since(t0))
			if len(evs) > 0 {
				from = evs[len(evs)-1].Seq + 1
			}
		}
	}()
	err = testutil.Share(b.N, agents, func(i, w int) error {
		h := h0
		h.OpID = opID(uint64(i) + 1)
		_, err := s.ApplyWhole(names[w], h, data)
		return err
	})
	close(stop)
	<-readerDone
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if readErr != nil {
		b.Fatal(readErr)
	}
	var sum, longest time.Duration
	for _, d := range reads {
		sum += d
		longest = max(longest, d)
	}
	b.ReportMetric(float64(len(reads)), "reads")
	b.ReportMetric(float64(longest.Microseconds())/1000, "read-max-ms")
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(reads)), "read-mean-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
