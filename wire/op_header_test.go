package wire

import (
	"errors"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// TestOpHeaderKindCodes pins the kind byte of OP_HEADER: the wire carries
// edgesync.OpKind's values as they are (event 1, state 2), and a peer
// built before the root type existed sent the same bytes.
func TestOpHeaderKindCodes(t *testing.T) {
	for _, c := range []struct {
		kind edgesync.OpKind
		code byte
	}{{edgesync.EventOp, 1}, {edgesync.StateOp, 2}} {
		f := &OpHeader{ID: edgesync.OpID{9}, Key: "k", Priority: edgesync.Normal, Kind: c.kind, ChunkSize: 1}
		b, err := f.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		// type varint, length varint, then ID (16), flags, priority, kind.
		_, n1, _ := quicvarint.Parse(b)
		_, n2, _ := quicvarint.Parse(b[n1:])
		at := n1 + n2 + 16 + 2
		if b[at] != c.code {
			t.Errorf("%s is encoded as %d, want %d", c.kind, b[at], c.code)
		}
		g, _, err := Parse(b)
		if err != nil || g.(*OpHeader).Kind != c.kind {
			t.Fatalf("parse of %s: %v, %v", c.kind, g, err)
		}
		for _, bad := range []byte{0, 3} {
			b[at] = bad
			if _, _, err := Parse(b); !errors.Is(err, ErrInvalidField) {
				t.Errorf("kind byte %d parses with %v, want ErrInvalidField", bad, err)
			}
		}
	}
}
