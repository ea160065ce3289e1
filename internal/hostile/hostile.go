package hostile

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
)

// Client is one QUIC connection to a core that has said Welcome.
type Client struct {
	Conn    *quic.Conn
	Welcome *wire.Welcome
}

// Dial connects to the core at addr with tlsConf (an agent's client TLS
// config, see testutil.PKI.ClientTLS), offers caps in its Hello and reads
// the core's Welcome.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, caps wire.Capabilities) (*Client, error) {
	conn, err := DialRaw(ctx, addr, tlsConf)
	if err != nil {
		return nil, err
	}
	w, err := hello(ctx, conn, caps)
	if err != nil {
		_ = conn.CloseWithError(0, "")
		return nil, fmt.Errorf("hostile dial %s: %w", addr, err)
	}
	return &Client{Conn: conn, Welcome: w}, nil
}

// DialRaw only connects: no stream is opened, no Hello sent.
func DialRaw(ctx context.Context, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	tlsConf = tlsConf.Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	conn, err := quic.DialAddr(ctx, addr, tlsConf, wire.QUICConfig(64))
	if err != nil {
		return nil, fmt.Errorf("hostile dial %s: %w", addr, err)
	}
	return conn, nil
}

func hello(ctx context.Context, conn *quic.Conn, caps wire.Capabilities) (*wire.Welcome, error) {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if err := Write(str, &wire.Hello{Versions: wire.SupportedVersions, Agent: "hostile", Caps: caps}); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetReadDeadline(dl)
	}
	f, err := wire.ReadFrame(str, 0)
	if err != nil {
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	w, ok := f.(*wire.Welcome)
	if !ok {
		return nil, fmt.Errorf("core answered hello with %s", f.Type())
	}
	return w, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.CloseWithError(0, "hostile client done") }

// Open opens an op stream, waiting while the core grants no more.
func (c *Client) Open(ctx context.Context) (*quic.Stream, error) {
	return c.Conn.OpenStreamSync(ctx)
}

// Write writes each frame to w in a write of its own.
func Write(w io.Writer, frames ...wire.Frame) error {
	for _, f := range frames {
		if err := wire.WriteFrame(w, f); err != nil {
			return err
		}
	}
	return nil
}

// Read reads the next frame from str within d.
func Read(str *quic.Stream, d time.Duration) (wire.Frame, error) {
	_ = str.SetReadDeadline(time.Now().Add(d))
	return wire.ReadFrame(str, 0)
}

// DataHead returns the head of a DATA frame for op id at offset 0 whose
// body declares bodyLen bytes: the frame's type and length, the op ID, the
// offset and the chunk mode. The chunk bytes (bodyLen minus the 18 bytes
// of those fields) are the caller's to send, or not.
func DataHead(id edgesync.OpID, bodyLen int) []byte {
	b := quicvarint.Append(nil, uint64(wire.FrameData))
	b = quicvarint.Append(b, uint64(bodyLen))
	b = append(b, id[:]...)
	b = quicvarint.Append(b, 0) // offset
	return append(b, 0)         // chunk mode: as the header says
}

// DataFrames encodes data, an op's whole payload, in the chunks of ch
// from chunk from on, as the DATA frames of op id.
func DataFrames(ch *codec.Header, id edgesync.OpID, data []byte, from int64) ([]*wire.Data, error) {
	var enc codec.Encoder
	var frames []*wire.Data
	for i := from; i < ch.Chunks(); i++ {
		off, n, _ := ch.ChunkRange(i)
		chunk, err := enc.EncodeChunk(nil, ch, i, data[off:off+int64(n)], nil)
		if err != nil {
			return nil, fmt.Errorf("encode chunk %d: %w", i, err)
		}
		frames = append(frames, &wire.Data{ID: id, Offset: uint64(off), Chunk: chunk})
	}
	return frames, nil
}

// MaxDataBody is the largest DATA body a core accepts: one maximal chunk
// and the frame's fields (the "16 MiB + 4080 B" of a maximal DATA frame).
var MaxDataBody = wire.FrameData.MaxBody()

// OpHeader returns a valid header of an event op of size plain bytes in
// chunks of chunk bytes, stored in full (codec.ModeFull) under key, with
// a made-up payload hash.
func OpHeader(id edgesync.OpID, key string, size uint64, chunk uint32) *wire.OpHeader {
	return &wire.OpHeader{ID: id, Key: key, Priority: edgesync.Normal, Kind: edgesync.EventOp,
		Mode: 1, PlainSize: size, ChunkSize: chunk, PayloadHash: sha256.Sum256(id[:])}
}

// OpID returns a distinct op ID for stream i of connection conn.
func OpID(conn, i int) edgesync.OpID {
	var id edgesync.OpID
	id[0], id[1], id[2] = 0xba, byte(conn), byte(conn>>8)
	id[14], id[15] = byte(i>>8), byte(i)
	return id
}

// WholeOp returns the frames of an op of data sent whole, as the agent
// sends an op of one chunk: OP_HEADER (an event under key, in full, in
// chunks of 64 KiB or of len(data) if larger), one DATA, COMMIT. An
// empty op has no DATA.
func WholeOp(id edgesync.OpID, key string, data []byte) ([]wire.Frame, error) {
	chunk := max(64<<10, len(data))
	hdr := OpHeader(id, key, uint64(len(data)), uint32(chunk))
	hdr.PayloadHash = sha256.Sum256(data)
	frames := []wire.Frame{hdr}
	if len(data) > 0 {
		ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, chunk, int64(len(data)), codec.Hash(hdr.PayloadHash), nil)
		if err != nil {
			return nil, err
		}
		d, err := DataFrames(&ch, id, data, 0)
		if err != nil {
			return nil, err
		}
		frames = append(frames, d[0])
	}
	return append(frames, &wire.Commit{ID: id, Chunks: 1}), nil
}

// StateOp returns the frames of a state op of data under key sent whole
// (in chunks of 64 KiB): in full, or, when base is not nil, as a delta
// (codec.ModeDelta) against base, the key's version it replaces.
func StateOp(id edgesync.OpID, key string, data, base []byte) ([]wire.Frame, error) {
	const chunk = 64 << 10
	hdr := OpHeader(id, key, uint64(len(data)), chunk)
	hdr.Kind, hdr.PayloadHash = edgesync.StateOp, sha256.Sum256(data)
	mode, cb := codec.ModeFull, (*codec.Base)(nil)
	if base != nil {
		mode, cb = codec.ModeDelta, codec.NewBase(base)
		hdr.Mode, hdr.HasBase, hdr.BaseHash = uint8(mode), true, sha256.Sum256(base)
	}
	ch, err := codec.NewHeader(mode, codec.LevelDefault, chunk, int64(len(data)), codec.Hash(hdr.PayloadHash), cb)
	if err != nil {
		return nil, err
	}
	var enc codec.Encoder
	b, err := enc.EncodeChunk(nil, &ch, 0, data, cb)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return []wire.Frame{hdr, &wire.Data{ID: id, Chunk: b}, &wire.Commit{ID: id, Chunks: 1}}, nil
}

// Append appends the encoding of frames to b, for one write of them all.
func Append(b []byte, frames ...wire.Frame) ([]byte, error) {
	for _, f := range frames {
		var err error
		if b, err = f.Append(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// ReadAll reads the frames on str up to its end, each within d; at most
// max frames, so that a core that answers for ever fails the caller.
func ReadAll(str *quic.Stream, d time.Duration, max int) ([]wire.Frame, error) {
	var frames []wire.Frame
	for range max + 1 {
		f, err := Read(str, d)
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		frames = append(frames, f)
	}
	return frames, fmt.Errorf("more than %d frames on the stream", max)
}
