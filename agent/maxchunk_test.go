package agent

import (
	"bytes"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestMaximalChunkArrives: the fiber class's largest chunk (16 MiB) in
// full mode, an op of 16 MiB, on streams (the lane off) and on the lane.
// Its encoded chunk must fit a DATA frame: the codec's framing (mode,
// lengths) comes on top of the plain bytes, and the wire takes at most
// 16 MiB in a chunk. With the lane on, the op is two chunks (16 MiB - 9
// bytes and 9 bytes) and must land within the same bound on loopback.
func TestMaximalChunkArrives(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 16 MiB")
	}
	for _, lane := range []bool{false, true} {
		name := "lane-off"
		if lane {
			name = "lane-on"
		}
		t.Run(name, func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			c := coretest.Start(t, p, nil)
			// The link monitor's probes on: without a first figure the lane
			// starts slow (a 16 MiB op took 20 s on loopback).
			cfg := coretest.AgentConfig(t, p, c.Addr.String())
			for _, cl := range edgesync.LinkClasses() {
				cfg.Profiles[cl] = config.Profile{Mode: edgesync.SyncFull, ChunkSize: 16 << 20}
			}
			a := startAgent(t, p, cfg, Options{DisableLane: !lane})
			payload := testutil.RandomBytes(4, 16<<20)
			enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "blob/maximal", Kind: edgesync.StateOp, Priority: edgesync.Normal, Payload: bytes.NewReader(payload)})
			testutil.WaitFor(t, 60*time.Second, "the 16 MiB op stored at the core", func() bool {
				got, err := c.Data("site-1", "blob/maximal")
				return err == nil && bytes.Equal(got, payload)
			})
			if st := a.Stats()[0]; st.Parked != 0 {
				t.Errorf("the op was parked %d times on its way", st.Parked)
			}
		})
	}
}
