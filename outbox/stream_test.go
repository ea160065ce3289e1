package outbox

import (
	"context"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// patternReader yields n bytes of a position-derived pattern without
// holding them, like a producer streaming a file.
type patternReader struct{ off, n int64 }

// pattern has a prime length so that chunks do not repeat it in step.
var pattern = payloadOf(3, 65521)

func (r *patternReader) Read(b []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), r.n-r.off)]
	n := 0
	for n < len(b) {
		n += copy(b[n:], pattern[(r.off+int64(n))%int64(len(pattern)):])
	}
	r.off += int64(n)
	return n, nil
}

func patternAt(off int64) byte { return pattern[off%int64(len(pattern))] }

// TestLargePayloadStreams enqueues a 64 MiB payload (16 transactions of
// 4 MiB) and checks that the live heap (what each GC found reachable)
// never grew by half the payload: it is streamed through, not held. The
// heap's objects would count garbage not yet collected, which a starved
// GC lets pile up (20-28 MiB with 2 spinning loops beside it, 34 MiB once
// in the whole suite); the live heap grew 12-16 MiB. It then reads random
// ranges back.
func TestLargePayloadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	const size = 64 << 20
	o := openT(t, tempPath(t), Options{})
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	runtime.GC()

	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := heap()
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heap())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Priority: edgesync.Background, Payload: &patternReader{n: size}})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if op.Size != size {
		t.Fatalf("size %d, want %d", op.Size, size)
	}
	if grew := int64(peak) - int64(base); grew > size/2 {
		t.Fatalf("heap grew by %d MiB while enqueueing a %d MiB payload", grew>>20, size>>20)
	} else {
		t.Logf("heap grew by at most %d MiB for a %d MiB payload", grew>>20, size>>20)
	}
	p, err := o.OpenPayload(op.ID)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 3<<20)
	for range 20 {
		off := rng.Int64N(size)
		n, err := p.ReadAt(buf, off)
		if want := min(int64(len(buf)), size-off); int64(n) != want || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d) = %d, %v; want %d bytes", off, n, err, want)
		}
		for i := 0; i < n; i += 997 {
			if buf[i] != patternAt(off+int64(i)) {
				t.Fatalf("byte %d differs", off+int64(i))
			}
		}
	}
	if err := o.Ack(op.ID); err != nil {
		t.Fatal(err)
	}
}
