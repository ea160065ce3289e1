package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestSendsToCoreExactlyOnce sends keyed and event ops of several sizes over
// real QUIC on loopback and checks that the core holds each byte for byte.
func TestSendsToCoreExactlyOnce(t *testing.T) {
	p := newTestPKI(t, "site-1")
	c := startCore(t, p, nil)
	a := startAgent(t, p, agentConfig(t, p, c.addr.String()), Options{})

	rnd := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	sizes := []int{0, 100, 4 << 10, 200 << 10, 3 << 20}
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rnd.IntN(16)) // compressible
		}
		key := fmt.Sprintf("obj/%d", i)
		want[key] = data
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.Priority(i % 6), Kind: outbox.State, Payload: bytes.NewReader(data)})
	}
	waitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range want {
		got, err := coreData(t, c, "site-1", key)
		if err != nil {
			t.Fatalf("core has no %s: %v", key, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: core holds %d bytes, sent %d, or they differ", key, len(got), len(data))
		}
	}
	st := c.srv.Stats()
	if st.OpsApplied != int64(len(sizes)) {
		t.Errorf("core applied %d ops, want %d (stats %+v)", st.OpsApplied, len(sizes), st)
	}
}
