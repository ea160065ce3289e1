package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// seedFrames is one valid frame of every type, for the fuzz corpora.
func seedFrames() []Frame {
	id := edgesync.OpID{0x18, 0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	train := &ProbeTrain{TrainID: 9, Index: 2, Count: 16, Sent: time.Second}
	_ = train.PadTo(200)
	return []Frame{
		&Hello{Versions: []uint32{1, 2}, Agent: "ship-7", Caps: CapZstd | CapDelta | CapResume, LastClass: edgesync.Satellite, LastRTT: 600 * time.Millisecond, LastBandwidth: 2e6},
		&Welcome{Version: ProtocolVersion, Core: "core-eu", Caps: CapZstd, MaxFrame: MaxFrameSize, MaxOpBytes: 1 << 30, QuotaLeft: QuotaUnlimited, ProbeSession: 77},
		&OpHeader{ID: id, Key: "sensors/temp", Endpoint: "core", Priority: edgesync.High, Kind: edgesync.StateOp, Mode: 4, PlainSize: 1 << 20, HasEncodedSize: true, EncodedSize: 4000, ChunkSize: 64 << 10, PayloadHash: [32]byte{1}, HasBase: true, BaseHash: [32]byte{2}, Offset: 128, Expires: time.Unix(1_800_000_000, 0).UTC(), Summarized: true},
		&OpHeader{ID: id, Key: "bulk", Priority: edgesync.Background, Kind: edgesync.EventOp, Mode: 1, PlainSize: 8 << 20, ChunkSize: 256 << 10, PayloadHash: [32]byte{3}, Lane: true, LaneTransfer: 7},
		&OpHeader{ID: id, Key: "bulk", Priority: edgesync.Normal, Kind: edgesync.EventOp, Mode: 2, PlainSize: 4 << 20, ChunkSize: 256 << 10, PayloadHash: [32]byte{4}, Lane: true, LaneTransfer: 9, Eager: true},
		&Data{ID: id, Offset: 65536, Mode: 2, Chunk: []byte("some chunk bytes")},
		&Commit{ID: id, Chunks: 3, Bytes: 4000, Hash: [32]byte{3}},
		&Ack{IDs: []edgesync.OpID{id, {1}}},
		&Nack{ID: id, Code: CodeBaseMismatch, Msg: "base is not current"},
		&ResumeQuery{ID: id},
		&ResumeAnswer{ID: id, Held: 65536, Chunks: 1},
		&Summary{ID: id, Key: "logs/app", Size: 1 << 30, Hash: [32]byte{4}, Time: time.Unix(1_800_000_000, 5).UTC(), Producer: []byte(`{"lines":1200}`)},
		&Error{Code: CodeVersion, Msg: "no common version"},
		&Ping{Seq: 5, Sent: time.Minute},
		&Pong{Seq: 5, Echo: time.Minute, Sent: time.Hour},
		train,
		&ProbeReport{TrainID: 9, Count: 16, Received: 15, Bytes: 3000, First: time.Second, Last: time.Second + 20*time.Millisecond},
		&ProbeRequest{TrainID: 10, Count: 32, Size: 1200, Gap: time.Millisecond, Raw: true},
	}
}

// parseErrors are the only errors Parse may return.
var parseErrors = []error{io.ErrUnexpectedEOF, ErrUnknownFrame, ErrFrameTooLarge, ErrMalformedFrame, ErrFieldTooLong, ErrInvalidField, ErrUnsupportedVersion}

func isOneOf(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// FuzzParseFrame feeds arbitrary bytes to Parse: it must never panic, fail
// only with the documented sentinels, and whatever it accepts must encode
// again to a frame that parses to the same value.
func FuzzParseFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		b, err := fr.Append(nil)
		if err != nil {
			f.Fatalf("seed %s: %v", fr.Type(), err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Parse(b)
		// The stream reader applies the same checks.
		rf, rerr := ReadFrame(bytes.NewReader(b), 0)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Parse error %v but ReadFrame error %v", err, rerr)
		}
		if err == nil && !reflect.DeepEqual(rf, fr) {
			t.Fatalf("ReadFrame %#v, Parse %#v", rf, fr)
		}
		if err != nil {
			if !isOneOf(err, parseErrors) {
				t.Fatalf("Parse error %v is no documented sentinel", err)
			}
			if CodeOf(err) == CodeInternal {
				t.Fatalf("Parse error %v maps to internal", err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Parse consumed %d of %d bytes", n, len(b))
		}
		enc, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("re-encode parsed %s: %v", fr.Type(), err)
		}
		if len(enc) != fr.Len() {
			t.Fatalf("%s: Len %d, Append %d", fr.Type(), fr.Len(), len(enc))
		}
		again, _, err := Parse(enc)
		if err != nil {
			t.Fatalf("parse re-encoded %s: %v", fr.Type(), err)
		}
		if !reflect.DeepEqual(again, fr) {
			t.Fatalf("re-encoded %s differs:\n%#v\n%#v", fr.Type(), again, fr)
		}
	})
}

// FuzzOpenProbe feeds arbitrary packets to OpenProbe under a fixed key: it
// must never panic, and fail only with the documented sentinels.
func FuzzOpenProbe(f *testing.F) {
	for _, fr := range seedFrames() {
		if !fr.Type().IsProbe() {
			continue
		}
		p, err := SealProbe(testProbeKey, fr)
		if err != nil {
			f.Fatalf("seed %s: %v", fr.Type(), err)
		}
		f.Add(p)
	}
	probeErrors := append([]error{ErrProbeAuth, ErrNotProbe}, parseErrors...)
	f.Fuzz(func(t *testing.T, p []byte) {
		fr, err := OpenProbe(testProbeKey, p)
		if err != nil {
			if !isOneOf(err, probeErrors) {
				t.Fatalf("OpenProbe error %v is no documented sentinel", err)
			}
			return
		}
		if !fr.Type().IsProbe() {
			t.Fatalf("OpenProbe returned a %s", fr.Type())
		}
		again, err := SealProbe(testProbeKey, fr)
		if err != nil {
			t.Fatalf("re-seal %s: %v", fr.Type(), err)
		}
		if back, err := OpenProbe(testProbeKey, again); err != nil || !reflect.DeepEqual(back, fr) {
			t.Fatalf("re-sealed %s does not open to itself: %v", fr.Type(), err)
		}
	})
}

func TestSeedFramesCoverEveryType(t *testing.T) {
	seen := map[FrameType]bool{}
	for _, f := range seedFrames() {
		seen[f.Type()] = true
	}
	for _, ft := range allFrameTypes() {
		if !seen[ft] {
			t.Errorf("no fuzz seed for %s", ft)
		}
	}
}
