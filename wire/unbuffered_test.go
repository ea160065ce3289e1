package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
)

// readCounter is a stream read unbuffered, as a QUIC stream is: not an
// io.ByteReader, so every byte of a frame's header costs a Read. It
// counts them.
type readCounter struct {
	r     io.Reader
	reads int
}

func (c *readCounter) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestUnbufferedHeaderReads: from an unbuffered stream a frame's header
// takes one Read for its type and its length's first byte, then one for
// the rest of a longer length, then one for the body: 2 Reads for a frame
// of a body under 64 bytes, 3 for one under 16 KiB (an op's OP_HEADER and
// its DATA), where each header byte once took a Read of its own.
func TestUnbufferedHeaderReads(t *testing.T) {
	id := edgesync.OpID{1}
	for _, c := range []struct {
		f     Frame
		reads int
	}{
		{&Commit{ID: id, Chunks: 1}, 2},
		{&OpHeader{ID: id, Key: "sensors/pump-3/flow", Kind: edgesync.EventOp, PlainSize: 512, ChunkSize: 64 << 10}, 3},
		{&Data{ID: id, Chunk: bytes.Repeat([]byte{7}, 512)}, 3},
	} {
		b, err := c.f.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		cr := &readCounter{r: bytes.NewReader(b)}
		got, err := NewReader(cr, 0).ReadFrame()
		if err != nil || got.Type() != c.f.Type() {
			t.Fatalf("%s read back as %v, %v", c.f.Type(), got, err)
		}
		if cr.reads != c.reads {
			t.Errorf("%s of %d bytes took %d Reads, want %d", c.f.Type(), len(b), cr.reads, c.reads)
		}
	}
}

// TestUnbufferedTruncated: read unbuffered, a stream that ends between
// frames ends cleanly (io.EOF) and one that ends inside a frame, its
// header included, is io.ErrUnexpectedEOF, at every length.
func TestUnbufferedTruncated(t *testing.T) {
	id := edgesync.OpID{2}
	var b []byte
	var ends []int // where each frame ends
	for _, f := range []Frame{&OpHeader{ID: id, Key: "k", Kind: edgesync.StateOp, PlainSize: 3, ChunkSize: 1 << 16},
		&Data{ID: id, Chunk: []byte("abc")}, &Commit{ID: id, Chunks: 1}} {
		var err error
		if b, err = f.Append(b); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, len(b))
	}
	for n := 0; n <= len(b); n++ {
		fr := NewReader(&readCounter{r: bytes.NewReader(b[:n])}, 0)
		var err error
		frames := 0
		for err == nil && frames <= len(ends) {
			if _, err = fr.ReadFrame(); err == nil {
				frames++
			}
		}
		atEnd := n == 0 || frames > 0 && ends[frames-1] == n
		switch {
		case atEnd && err != io.EOF:
			t.Errorf("stream of %d bytes (%d whole frames): %v, want io.EOF", n, frames, err)
		case !atEnd && !errors.Is(err, io.ErrUnexpectedEOF):
			t.Errorf("stream of %d bytes (%d whole frames): %v, want io.ErrUnexpectedEOF", n, frames, err)
		}
	}
}

// TestUnbufferedReadAllocs: a Reader's frame from an unbuffered stream
// allocates the frame and nothing else once its buffer has grown: the
// header's bytes, read from the stream, are no allocation of their own
// (they were one per frame: three per small op the core reads).
func TestUnbufferedReadAllocs(t *testing.T) {
	b, err := (&Commit{ID: edgesync.OpID{3}, Chunks: 1}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	const frames = 64
	stream := bytes.Repeat(b, frames+1)
	src := &readCounter{r: bytes.NewReader(stream)}
	fr := NewReader(src, 0)
	if _, err := fr.ReadFrame(); err != nil { // the buffer grows
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(frames-1, func() {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations per COMMIT read, want 1 (the frame)", allocs)
	}
}
