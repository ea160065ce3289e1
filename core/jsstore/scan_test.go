package jsstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestScanOverASlowLink stores and reads a staged object through a link
// to NATS slower than the client's one-second wait for a fetch that does
// not wait (FetchNoWait): a scan must not take a fetch cut short for the
// end of the data. It did: the commit found the data short and refused it
// as a hash mismatch, and reads ended early.
func TestScanOverASlowLink(t *testing.T) {
	srv := natstest.Run(t)
	// 1.5 MiB/s: one fetch of 8 chunks of 256 KiB takes over a second.
	slow := natstest.SlowProxy(t, srv.Addr().String(), 3<<19)
	s := openTest(t, slow, core.Config{ChunkSize: 256 << 10, InlineMax: 64 << 10})

	const size = 4 << 20
	data := storetest.Payload(5, size)
	hdr := storetest.Header(storetest.OpID(1), edgesync.StateOp, "big", data)
	res, err := s.Apply("a", hdr, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("apply through a slow link: %v", err)
	}
	if res.Version != 1 {
		t.Fatalf("apply = %+v", res)
	}
	storetest.CheckObject(t, s, "a", "big", data, "through a slow link")
}

// TestScanReadsAgainWhatAPullMissed scans through a link so slow that each
// pull ends, after the store's Timeout, with messages still on their way:
// the scan reads those again from a new consumer, and hands every message
// over once, in order.
func TestScanReadsAgainWhatAPullMissed(t *testing.T) {
	srv := natstest.Run(t)
	slow := natstest.SlowProxy(t, srv.Addr().String(), 1<<20)
	s := openWith(t, Config{URLs: []string{slow}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, Timeout: 1500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: "scantest", Subjects: []string{"scantest.>"}, MaxMsgSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 12, 256 << 10
	for i := range n {
		if _, err := s.js.Publish(ctx, "scantest.x", storetest.Payload(uint64(i), size)); err != nil {
			t.Fatal(err)
		}
	}
	// 8 messages of 256 KiB take 2 s at 1 MiB/s; a pull waits at most 1.5 s.
	var got int
	err = s.scanBatch(ctx, st, jetstream.ConsumerConfig{FilterSubject: "scantest.x"}, 8, func(m jetstream.Msg) error {
		if !bytes.Equal(m.Data(), storetest.Payload(uint64(got), size)) {
			t.Fatalf("message %d of the scan is not the %dth published", got, got)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatalf("scan through a slow link: %v", err)
	}
	if got != n {
		t.Fatalf("scan handed over %d of %d messages", got, n)
	}
}
