package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// The limits on what a peer's bytes make the core allocate (docs/core.md,
// "The server under broken or hostile peers"): each is checked before the
// allocation it bounds.

// longKey and longEndpoint are the longest a peer may send: what an op
// header costs the core the most.
var (
	longKey      = strings.Repeat("k", wire.MaxKeyLen)
	longEndpoint = strings.Repeat("e", wire.MaxNameLen)
)

// zstdData is the DATA frame of op id whose payload, plain, is one chunk
// in zstd.
func zstdData(t *testing.T, id edgesync.OpID, plain []byte) *wire.Data {
	t.Helper()
	ch, err := codec.NewHeader(codec.ModeZstd, codec.LevelDefault, len(plain), int64(len(plain)), codec.Hash(sha256.Sum256(plain)), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := hostile.DataFrames(&ch, id, plain, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d[0]
}

// bombs returns the frames of four kinds of whole event op under the
// longest key and endpoint, whose DATA is a zstd bomb (a few hundred
// bytes or less that decode to plain or more, zero bytes), as a peer
// that wants the core to decode and hold what it will not store sends
// them: the payload hash is of other bytes, so that the core refuses
// each op once it has decoded it (hash-mismatch); the header announces
// 2 × plain, more than the core accepts when its MaxOpBytes is plain
// (too-large); the chunk declares plain bytes and its zstd frame
// declares 16 MiB; the zstd frame declares no size and decodes to 16
// MiB (both corrupt or too-large).
func bombs(t *testing.T, plain int) [4][]wire.Frame {
	t.Helper()
	id := hostile.OpID(1, 0)
	zeros := make([]byte, 16<<20)
	op := func(size int, chunk []byte) []wire.Frame {
		hdr := hostile.OpHeader(id, longKey, uint64(size), uint32(size))
		hdr.Endpoint, hdr.Mode = longEndpoint, uint8(codec.ModeZstd)
		hdr.PayloadHash = sha256.Sum256(zeros[:size])
		if len(chunk) > wire.MaxPackedOpData {
			t.Fatalf("a bomb encodes to %d bytes, more than an op that shares its stream may send", len(chunk))
		}
		return []wire.Frame{hdr, &wire.Data{ID: id, Chunk: chunk}, &wire.Commit{ID: id, Chunks: 1}}
	}
	encode := func(size int) []byte { return zstdData(t, id, zeros[:size]).Chunk }
	// lying returns a zstd chunk that declares plain bytes around the
	// zstd frame z.
	lying := func(z []byte) []byte {
		b := append([]byte{byte(codec.ModeZstd)}, binary.AppendUvarint(nil, uint64(plain))...)
		return append(binary.AppendUvarint(b, uint64(len(z))), z...)
	}
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	sized := zw.EncodeAll(zeros, nil)
	var unsized bytes.Buffer
	zw.Reset(&unsized)
	if _, err := zw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var out [4][]wire.Frame
	out[0] = op(plain, encode(plain))
	out[0][0].(*wire.OpHeader).PayloadHash = sha256.Sum256([]byte("other bytes"))
	out[1] = op(2*plain, encode(2*plain))
	out[2] = op(plain, lying(sized))
	out[3] = op(plain, lying(unsized.Bytes()))
	return out
}

// streamAnswers opens a stream on c, has write send on it, ends the
// stream's send side and returns the core's answers, each within d. A
// write the core cancelled, having ended the stream early (refused busy),
// is no error: its answers came.
func streamAnswers(c *hostile.Client, d time.Duration, write func(*quic.Stream) error) ([]wire.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	str, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer str.CancelRead(0)
	if err := write(str); err == nil {
		if err := str.Close(); err != nil {
			return nil, err
		}
	} else if !peerEnded(err) {
		return nil, fmt.Errorf("write: %w", err)
	}
	return hostile.ReadAll(str, d, 2*wire.MaxOpsPerStream)
}

// livePeak collects garbage and samples the live heap every 10 ms until
// stop is closed, and sends the most it saw above what was live at its
// start: what the core holds, whatever the collector's pace.
func livePeak(stop <-chan struct{}, peak chan<- int64) {
	peak <- peakOf(stop, 10*time.Millisecond, liveHeap)
}

// TestPackedBombMemory attacks the core's frame memory with streams of
// several ops: one connection opens as many streams as the core allows,
// each with 64 ops under the longest key and endpoint whose DATA is a
// zstd bomb (see bombs: a stream's ops are of one kind, the streams take
// the kinds in turn). The core may hold no more than the connection's
// bound for them: its gauge stays within it, and so does the live heap it
// grows by (with room for quic-go's buffers, the streams' own state and
// the test's client, which the bound does not cover). Every op answered is refused for what
// it is, or busy; a stream's end refused busy leaves the ops after it
// unanswered, as the agent's resends expect.
func TestPackedBombMemory(t *testing.T) {
	const bound = MinConnFrameMemory
	streams := 1000 // the most a config allows (core's limits.max_streams)
	if raceEnabled {
		streams = 250
	}
	const plain = 1 << 20
	ts := startServer(t, Config{}, func(c *ServerConfig) {
		c.MaxConnFrameMemory, c.MaxFrameMemory, c.MaxStreams, c.MaxOpBytes = bound, bound, streams, plain
	})
	c := ts.dial(t, wire.CapOpsPerStream)
	// Each op is written on its own, renumbered, so that the client holds
	// little of what it sends.
	kinds := bombs(t, plain)
	appendOp := func(b []byte, kind int, id edgesync.OpID) []byte {
		op := kinds[kind]
		hdr := *op[0].(*wire.OpHeader)
		hdr.ID = id
		b, err := hostile.Append(b, &hdr, &wire.Data{ID: id, Chunk: op[1].(*wire.Data).Chunk}, &wire.Commit{ID: id, Chunks: 1})
		if err != nil {
			panic(err) // the frames are valid: they encoded before
		}
		return b
	}
	for k, op := range kinds {
		t.Logf("bomb %d: %d bytes of DATA", k, len(op[1].(*wire.Data).Chunk))
	}

	stop, peak := make(chan struct{}), make(chan int64, 1)
	go livePeak(stop, peak)

	var mu sync.Mutex
	answered := map[string]int{} // by kind of bomb and answer
	var unanswered int
	done := make(chan error, streams)
	for s := range streams {
		go func() {
			done <- func() error {
				kind := s % len(kinds)
				answers, err := streamAnswers(c, 60*time.Second, func(str *quic.Stream) error {
					var b []byte
					for i := range wire.MaxOpsPerStream {
						b = appendOp(b[:0], kind, hostile.OpID(1, s*wire.MaxOpsPerStream+i))
						if _, err := str.Write(b); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("stream %d: answers %s: %w", s, describe(answers), err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, f := range answers {
					switch f := f.(type) {
					case *wire.Nack:
						answered[fmt.Sprintf("bomb %d: NACK %s", kind, f.Code)]++
					case *wire.Error:
						answered[fmt.Sprintf("bomb %d: ERROR %s", kind, f.Code)]++
					default:
						answered[fmt.Sprintf("bomb %d: %s", kind, f.Type())]++
					}
				}
				unanswered += max(0, wire.MaxOpsPerStream-len(answers))
				return nil
			}()
		}()
	}
	for s := range streams {
		if err := testutil.Returned(t, done, 120*time.Second, fmt.Sprintf("stream %d of %d", s, streams)); err != nil {
			close(stop)
			<-peak
			t.Fatal(err)
		}
	}
	close(stop)
	heap := <-peak
	st := ts.srv.Stats()
	t.Logf("answers %v, %d ops unanswered; frame memory peak %d KiB, live heap grew by %d KiB at most; bound %d KiB",
		answered, unanswered, st.FrameMemoryPeak>>10, heap>>10, bound>>10)
	// What each kind may be answered: refused for what it is, or busy
	// (ERROR busy: a stream whose first OP_HEADER did not fit).
	want := [4][]wire.Code{{wire.CodeHashMismatch}, {wire.CodeTooLarge}, {wire.CodeTooLarge, wire.CodeCorrupt}, {wire.CodeTooLarge, wire.CodeCorrupt}}
	for k, codes := range want {
		for _, code := range append(codes, wire.CodeBusy) {
			delete(answered, fmt.Sprintf("bomb %d: NACK %s", k, code))
		}
		delete(answered, fmt.Sprintf("bomb %d: ERROR %s", k, wire.CodeBusy))
	}
	if len(answered) > 0 {
		t.Errorf("answers other than the bombs' refusals or busy: %v", answered)
	}
	if st.FrameMemoryPeak > bound {
		t.Errorf("the frame memory gauge peaked at %d bytes, the bound is %d", st.FrameMemoryPeak, bound)
	}
	// What the bound does not cover: quic-go's buffers on both sides, the
	// client's streams' own state (the core's, 16 KiB each, is counted:
	// TestHostileFleetMemory) and the test's client. 32 MiB is far
	// below what the streams held uncounted (1000 streams × 64 op headers
	// of over 1 KiB each: 90 MiB; 149 MiB grown in all).
	const slack = 32 << 20
	if heap > bound+slack {
		t.Errorf("the live heap grew by %d MiB during the attack; the bound is %d MiB (and %d MiB for quic-go, the streams and the client)",
			heap>>20, bound>>20, slack>>20)
	}
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
	// Alone, each kind of bomb is refused for what it is.
	for k := range kinds {
		b := appendOp(appendOp(nil, k, hostile.OpID(2, 2*k)), k, hostile.OpID(2, 2*k+1))
		answers := sendStream(t, c, b)
		if len(answers) != 2 {
			t.Fatalf("bomb %d alone: answers %s, want a NACK of each op", k, describe(answers))
		}
		for _, f := range answers {
			if n, ok := f.(*wire.Nack); !ok || !slices.Contains(want[k], n.Code) {
				t.Errorf("bomb %d alone: answers %s, want NACKs %v", k, describe(answers), want[k])
			}
		}
	}
	if st := ts.srv.Stats(); st.InternalErrors != 0 {
		t.Errorf("%d internal errors", st.InternalErrors)
	}
}

// TestPackedOpsDecodeIntoWhatIsReserved: an op of a stream of several is
// decoded into the memory reserved for it, its size as its header
// announces: a stream of 16 ops of 1 MiB (zstd, a few hundred bytes
// each) holds 16 MiB and their headers, not a decoded chunk more. The
// core decoded each op into a buffer of the stream's and then reserved
// and copied it: one chunk more per stream, decoded before the bound
// was asked.
func TestPackedOpsDecodeIntoWhatIsReserved(t *testing.T) {
	const n, plain = 16, 1 << 20
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	zeros := make([]byte, plain)
	chunk := zstdData(t, hostile.OpID(1, 0), zeros).Chunk
	var b []byte
	var ids []edgesync.OpID
	var held int64 // what the ops may hold: their plain bytes and headers
	for i := range n {
		id := hostile.OpID(1, i)
		hdr := hostile.OpHeader(id, "ev", plain, plain)
		hdr.Mode, hdr.PayloadHash = uint8(codec.ModeZstd), sha256.Sum256(zeros)
		var err error
		if b, err = hostile.Append(b, hdr, &wire.Data{ID: id, Chunk: chunk}, &wire.Commit{ID: id, Chunks: 1}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		held += plain + int64(packedOpCost(hdr))
	}
	wantAnswers(t, sendStream(t, c, b), ids, nil, wire.CodeOK, wire.CodeOK)
	// The stream's frame buffer holds its largest frame, a few hundred
	// bytes here, in steps of 64 KiB at most.
	st := ts.srv.Stats()
	if limit := held + 64<<10; st.FrameMemoryPeak > limit {
		t.Errorf("a stream of %d ops of %d bytes held %d bytes of frame memory at its peak; its ops need %d, and its frame buffer at most 64 KiB",
			n, plain, st.FrameMemoryPeak, held)
	}
	storedOnce(t, ts.store, "site-1", ids, nil)
}

// TestDeltaRegionReserved: a delta chunk names the base region its block
// copies from, up to codec.MaxDeltaRegion (48 MiB) of a large enough
// base, which the decoder reads whole before it decodes the block. That
// read is reserved in the connection's frame memory first: 8 streams,
// each holding 2 delta ops of 64 KiB whose chunk names a 12 MiB region
// of the key's 12 MiB base (and copies nothing from it), make the core
// hold no more than its bound. The decoder held each stream's region
// uncounted until the stream ended: 96 MiB against a 32 MiB bound.
func TestDeltaRegionReserved(t *testing.T) {
	const bound = MinConnFrameMemory
	const streams, ops, region, plain = 8, 2, 12 << 20, 64 << 10
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxConnFrameMemory, c.MaxFrameMemory = bound, bound })
	base := make([]byte, region)
	baseHash := sha256.Sum256(base)
	if _, err := ts.store.ApplyWhole("site-1", PartialHeader{OpID: hostile.OpID(9, 0), Key: "big", Kind: edgesync.StateOp,
		Priority: edgesync.Normal, Size: region, Hash: baseHash}, base); err != nil {
		t.Fatal(err)
	}
	// The chunk: its one block records the region [0, 12 MiB) and has
	// neither ops nor literals.
	chunk := append([]byte{byte(codec.ModeDelta)}, binary.AppendUvarint(nil, plain)...)
	chunk = binary.AppendUvarint(chunk, 1<<2) // ops: none stored, raw, region recorded
	chunk = binary.AppendUvarint(chunk, 0)
	chunk = binary.AppendUvarint(chunk, region)
	chunk = binary.AppendUvarint(chunk, 0) // literals: none stored, raw
	c := ts.dial(t, wire.CapOpsPerStream)
	before := liveHeap()
	strs := make([]*quic.Stream, streams)
	for s := range streams {
		strs[s] = openStream(t, c)
		defer strs[s].CancelRead(0)
		var b []byte
		for i := range ops {
			id := hostile.OpID(1, s*ops+i)
			hdr := hostile.OpHeader(id, "big", plain, plain)
			hdr.Kind, hdr.Mode, hdr.HasBase, hdr.BaseHash = edgesync.StateOp, uint8(codec.ModeDelta), true, baseHash
			var err error
			if b, err = hostile.Append(b, hdr, &wire.Data{ID: id, Chunk: chunk}, &wire.Commit{ID: id, Chunks: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := strs[s].Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// A stream's ops are read one after another: once the core has read
	// the DATA of every op, it has decoded (or refused) each stream's
	// first op, and holds what it needed for it until the stream ends.
	total := int64(streams * ops * len(chunk))
	testutil.WaitFor(t, 30*time.Second, "the core to read every op's DATA", func() bool { return ts.srv.Stats().BytesReceived >= total })
	grown := liveHeap() - before
	st := ts.srv.Stats()
	t.Logf("%d streams hold %d delta ops naming a %d MiB region each: live heap grown by %d KiB, frame memory %d KiB (bound %d KiB)",
		streams, streams*ops, region>>20, grown>>10, st.FrameMemory>>10, bound>>10)
	const slack = 16 << 20
	if grown > bound+slack {
		t.Errorf("the live heap grew by %d MiB while the streams waited; the bound is %d MiB (and %d MiB for quic-go, the streams and the client)",
			grown>>20, bound>>20, slack>>20)
	}
	for s, str := range strs {
		if err := str.Close(); err != nil {
			t.Fatal(err)
		}
		answers, err := hostile.ReadAll(str, 10*time.Second, 2*ops)
		if err != nil {
			t.Fatalf("stream %d: answers %s: %v", s, describe(answers), err)
		}
		for _, f := range answers {
			if n, ok := f.(*wire.Nack); !ok || (n.Code != wire.CodeCorrupt && n.Code != wire.CodeBusy) {
				t.Errorf("stream %d: answers %s, want NACKs corrupt (no ops, no literals) or busy", s, describe(answers))
			}
		}
	}
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestSummaryCopyReserved: the producer's bytes of a SUMMARY (up to 64
// KiB) are copied out of the frame for the store; the copy is reserved
// in the connection's frame memory beside the frame, as what a thousand
// streams of summaries hold at once must be.
func TestSummaryCopyReserved(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	str := openStream(t, c)
	defer str.CancelRead(0)
	id := hostile.OpID(1, 0)
	sum := &wire.Summary{ID: id, Key: "log", Size: 1 << 30, Hash: sha256.Sum256(nil), Time: time.Unix(1, 0),
		Producer: make([]byte, wire.MaxSummaryBytes)}
	if err := hostile.Write(str, sum); err != nil {
		t.Fatal(err)
	}
	f, err := hostile.Read(str, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := f.(*wire.Ack); !ok || a.IDs[0] != id {
		t.Fatalf("summary answered %s, want its ACK", describe([]wire.Frame{f}))
	}
	if peak := ts.srv.Stats().FrameMemoryPeak; peak < 2*wire.MaxSummaryBytes {
		t.Errorf("a summary of %d producer bytes held %d bytes of frame memory at its peak: its frame and its copy are %d",
			wire.MaxSummaryBytes, peak, 2*wire.MaxSummaryBytes)
	}
}

// TestSpentBudgetRefusesStreamClearly: when the frame memory is spent
// before a stream's first OP_HEADER fits, the agent that wrote a stream
// of several ops at once may finish its write and reads why: ERROR busy,
// naming the limit. The core cancelled the stream instead, and the
// agent's write failed ("canceled by remote") without a reason.
func TestSpentBudgetRefusesStreamClearly(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	// Spend the core's frame memory but for a few bytes, as streams in
	// flight would.
	spent := int(ts.srv.cfg.MaxFrameMemory) - 16
	if err := ts.srv.mem.Reserve(spent); err != nil {
		t.Fatal(err)
	}
	_, b := packedOps(t, 1, 0, wire.MaxOpsPerStream, wire.MaxPackedOpData-64)
	str := openStream(t, c)
	defer str.CancelRead(0)
	if _, err := str.Write(b); err != nil {
		t.Fatalf("write of %d ops at once: %v; want it read and answered", wire.MaxOpsPerStream, err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	answers, err := hostile.ReadAll(str, 10*time.Second, 2*wire.MaxOpsPerStream)
	if err != nil {
		t.Fatalf("answers %s: %v", describe(answers), err)
	}
	if len(answers) != 1 {
		t.Fatalf("answers %s, want one ERROR busy", describe(answers))
	}
	if e, ok := answers[0].(*wire.Error); !ok || e.Code != wire.CodeBusy || !strings.Contains(e.Msg, "max_frame_memory") {
		t.Fatalf("answers %s, want ERROR busy naming the limit", describe(answers))
	}
	ts.srv.mem.Release(spent)
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
}
