package wire

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
	"pgregory.net/rapid"
)

// Generators of valid frames for the property tests. Sizes are kept small
// (chunks up to 2 KiB) so that checking every truncated prefix stays fast;
// the limits themselves are tested separately.

func genVarint() *rapid.Generator[uint64] {
	return rapid.OneOf(rapid.Uint64Range(0, 70), rapid.Uint64Range(0, 20000), rapid.Uint64Range(0, quicvarint.Max))
}

func genDuration() *rapid.Generator[time.Duration] {
	return rapid.Map(genVarint(), func(v uint64) time.Duration { return time.Duration(v) })
}

func genOpID() *rapid.Generator[edgesync.OpID] {
	return rapid.Custom(func(t *rapid.T) edgesync.OpID {
		var id edgesync.OpID
		copy(id[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id"))
		return id
	})
}

func genHash() *rapid.Generator[[32]byte] {
	return rapid.Custom(func(t *rapid.T) [32]byte {
		var h [32]byte
		copy(h[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
		return h
	})
}

// genTime makes wall-clock times in the encodable range, or the zero time,
// in the form Parse returns (UTC, no monotonic reading).
func genTime() *rapid.Generator[time.Time] {
	return rapid.Custom(func(t *rapid.T) time.Time {
		n := rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64Range(1, uint64(maxTime.UnixNano()))).Draw(t, "ns")
		return timeFromNanos(n)
	})
}

func genString(max int) *rapid.Generator[string] {
	return rapid.StringOfN(rapid.Rune(), 0, max/4, max)
}

func genBytes(max int) *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		b := rapid.SliceOfN(rapid.Byte(), 0, max).Draw(t, "bytes")
		if len(b) == 0 {
			return nil // Parse returns nil for empty optional byte fields
		}
		return b
	})
}

func genU32() *rapid.Generator[uint32] {
	return rapid.OneOf(rapid.Uint32Range(0, 70), rapid.Uint32())
}

var frameGens = map[FrameType]*rapid.Generator[Frame]{
	FrameHello: rapid.Custom(func(t *rapid.T) Frame {
		return &Hello{
			Versions:      rapid.SliceOfN(genU32(), 1, MaxVersions).Draw(t, "versions"),
			Agent:         genString(MaxNameLen).Draw(t, "agent"),
			Caps:          Capabilities(genVarint().Draw(t, "caps")),
			LastClass:     rapid.SampledFrom(edgesync.LinkClasses()).Draw(t, "class"),
			LastRTT:       genDuration().Draw(t, "rtt"),
			LastBandwidth: genVarint().Draw(t, "bw"),
		}
	}),
	FrameWelcome: rapid.Custom(func(t *rapid.T) Frame {
		return &Welcome{
			Version:      rapid.SampledFrom(SupportedVersions).Draw(t, "version"),
			Core:         genString(MaxNameLen).Draw(t, "core"),
			Caps:         Capabilities(genVarint().Draw(t, "caps")),
			MaxFrame:     genVarint().Draw(t, "maxframe"),
			MaxOpBytes:   genVarint().Draw(t, "maxop"),
			QuotaLeft:    genVarint().Draw(t, "quota"),
			ProbeSession: rapid.Uint64().Draw(t, "session"),
		}
	}),
	FrameOpHeader: rapid.Custom(func(t *rapid.T) Frame {
		f := &OpHeader{
			ID:          genOpID().Draw(t, "id"),
			Key:         genString(MaxKeyLen).Draw(t, "key"),
			Endpoint:    genString(MaxNameLen).Draw(t, "endpoint"),
			Priority:    rapid.SampledFrom(edgesync.Priorities()).Draw(t, "prio"),
			Kind:        rapid.SampledFrom(edgesync.OpKinds()).Draw(t, "kind"),
			Mode:        rapid.Uint8().Draw(t, "mode"),
			PlainSize:   genVarint().Draw(t, "plain"),
			ChunkSize:   rapid.Uint32Range(1, MaxChunkSize).Draw(t, "chunk"),
			PayloadHash: genHash().Draw(t, "payload hash"),
			Offset:      genVarint().Draw(t, "offset"),
			Expires:     genTime().Draw(t, "expires"),
			Summarized:  rapid.Bool().Draw(t, "summarized"),
		}
		if rapid.Bool().Draw(t, "has encoded") {
			f.HasEncodedSize, f.EncodedSize = true, genVarint().Draw(t, "encoded")
		}
		if rapid.Bool().Draw(t, "has base") {
			f.HasBase, f.BaseHash = true, genHash().Draw(t, "base hash")
		}
		if rapid.Bool().Draw(t, "lane") {
			f.Lane, f.LaneTransfer = true, genVarint().Draw(t, "lane transfer")
			f.Eager = rapid.Bool().Draw(t, "eager")
		}
		return f
	}),
	FrameData: rapid.Custom(func(t *rapid.T) Frame {
		return &Data{
			ID:     genOpID().Draw(t, "id"),
			Offset: genVarint().Draw(t, "offset"),
			Mode:   rapid.Uint8().Draw(t, "mode"),
			Chunk:  genBytes(2048).Draw(t, "chunk"),
		}
	}),
	FrameCommit: rapid.Custom(func(t *rapid.T) Frame {
		return &Commit{ID: genOpID().Draw(t, "id"), Chunks: genVarint().Draw(t, "chunks"),
			Bytes: genVarint().Draw(t, "bytes"), Hash: genHash().Draw(t, "hash")}
	}),
	FrameAck: rapid.Custom(func(t *rapid.T) Frame {
		return &Ack{IDs: rapid.SliceOfN(genOpID(), 1, 70).Draw(t, "ids")}
	}),
	FrameNack: rapid.Custom(func(t *rapid.T) Frame {
		return &Nack{ID: genOpID().Draw(t, "id"), Code: Code(rapid.Uint16Range(1, 0xffff).Draw(t, "code")),
			Msg: genString(MaxMessageLen).Draw(t, "msg")}
	}),
	FrameResumeQuery: rapid.Custom(func(t *rapid.T) Frame {
		return &ResumeQuery{ID: genOpID().Draw(t, "id")}
	}),
	FrameResumeAnswer: rapid.Custom(func(t *rapid.T) Frame {
		return &ResumeAnswer{ID: genOpID().Draw(t, "id"), Held: genVarint().Draw(t, "held"),
			Chunks: genVarint().Draw(t, "chunks"), Complete: rapid.Bool().Draw(t, "complete")}
	}),
	FrameSummary: rapid.Custom(func(t *rapid.T) Frame {
		return &Summary{ID: genOpID().Draw(t, "id"), Key: genString(MaxKeyLen).Draw(t, "key"),
			Size: genVarint().Draw(t, "size"), Hash: genHash().Draw(t, "hash"), Time: genTime().Draw(t, "time"),
			Producer: genBytes(300).Draw(t, "producer")}
	}),
	FrameError: rapid.Custom(func(t *rapid.T) Frame {
		return &Error{Code: Code(rapid.Uint16Range(1, 0xffff).Draw(t, "code")), Msg: genString(MaxMessageLen).Draw(t, "msg")}
	}),
	FramePing: rapid.Custom(func(t *rapid.T) Frame {
		return &Ping{Seq: genVarint().Draw(t, "seq"), Sent: genDuration().Draw(t, "sent")}
	}),
	FramePong: rapid.Custom(func(t *rapid.T) Frame {
		return &Pong{Seq: genVarint().Draw(t, "seq"), Echo: genDuration().Draw(t, "echo"), Sent: genDuration().Draw(t, "sent")}
	}),
	FrameProbeTrain: rapid.Custom(func(t *rapid.T) Frame {
		count := rapid.Uint32Range(1, MaxTrainCount).Draw(t, "count")
		return &ProbeTrain{TrainID: genVarint().Draw(t, "train"), Count: count,
			Index: rapid.Uint32Range(0, count-1).Draw(t, "index"), Sent: genDuration().Draw(t, "sent"),
			Pad: rapid.IntRange(0, 1100).Draw(t, "pad")}
	}),
	FrameProbeReport: rapid.Custom(func(t *rapid.T) Frame {
		count := rapid.Uint32Range(0, MaxTrainCount).Draw(t, "count")
		first := time.Duration(rapid.Uint64Range(0, quicvarint.Max/2).Draw(t, "first"))
		return &ProbeReport{TrainID: genVarint().Draw(t, "train"), Count: count,
			Received: rapid.Uint32Range(0, count).Draw(t, "received"), Bytes: genVarint().Draw(t, "bytes"),
			First: first, Last: first + time.Duration(rapid.Uint64Range(0, quicvarint.Max/2).Draw(t, "disp"))}
	}),
	FrameProbeRequest: rapid.Custom(func(t *rapid.T) Frame {
		return &ProbeRequest{TrainID: genVarint().Draw(t, "train"), Count: rapid.Uint32Range(2, MaxTrainCount).Draw(t, "count"),
			Size: rapid.Uint32Range(0, MaxProbeFrameSize).Draw(t, "size"), Gap: genDuration().Draw(t, "gap"),
			Raw: rapid.Bool().Draw(t, "raw")}
	}),
}

// allFrameTypes lists every known type in order.
func allFrameTypes() []FrameType {
	var ts []FrameType
	for t := FrameType(0); t < numFrameTypes; t++ {
		if t.Known() {
			ts = append(ts, t)
		}
	}
	return ts
}

func genAnyFrame() *rapid.Generator[Frame] {
	gens := make([]*rapid.Generator[Frame], 0, len(frameGens))
	for _, t := range allFrameTypes() {
		gens = append(gens, frameGens[t])
	}
	return rapid.OneOf(gens...)
}

func genProbeFrame() *rapid.Generator[Frame] {
	var gens []*rapid.Generator[Frame]
	for _, t := range allFrameTypes() {
		if t.IsProbe() {
			gens = append(gens, frameGens[t])
		}
	}
	return rapid.OneOf(gens...)
}
