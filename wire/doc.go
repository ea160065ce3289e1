// Package wire is the framing protocol that agent and core speak on QUIC
// streams and datagrams (ALPN "edge-sync/1"), plus the authenticated raw UDP
// packets the link monitor uses for probe trains.
//
// # Frame layout
//
// Every frame is
//
//	type   (QUIC varint, RFC 9000 §16)
//	length (QUIC varint: bytes of body that follow)
//	body   (the type's fields, in order; fixed-size fields are raw bytes,
//	        numbers are varints, strings and byte strings are a varint
//	        length followed by the bytes)
//
// The length lets a reader check a frame against the limits before reading
// or allocating its body: each type has its own cap ([FrameType.MaxBody]),
// the whole frame is capped at [MaxFrameSize] (one 16 MiB chunk plus
// slack), and [ReadFrame] takes the caller's own maximum as well (the
// core's Welcome.MaxFrame). A reader that knows which frames may come
// next refuses any other after its header ([Reader.ReadFrameOf],
// [ErrUnexpectedFrame]). Even an accepted length is not trusted with
// memory: a body is allocated as its bytes arrive (64 KiB, then doubling
// up to the declared length), and a [Reader] with a [Budget] reserves each
// growth there first, so a peer that declares 16 MiB and sends 64 KiB
// costs 64 KiB. A body must be used exactly: fields that run past it or
// bytes left after them are [ErrMalformedFrame].
//
// # Frame types
//
//	type  name           body
//	0x01  HELLO          versions, agent name, capabilities, last link class/RTT/bandwidth
//	0x02  WELCOME        chosen version, core name, capabilities, max frame, max op bytes, quota left, probe session
//	0x03  OP_HEADER      op ID, flags, priority, kind, codec mode, key, endpoint, plain size,
//	                     [encoded size], chunk size, resume offset, expiry, payload hash, [base hash],
//	                     [lane transfer]
//	0x04  DATA           op ID, offset, chunk mode, chunk bytes (to the end of the body)
//	0x05  COMMIT         op ID, chunk count, [encoded bytes, SHA-256 of the encoded stream]
//	0x06  ACK            count, op IDs (up to MaxAckIDs)
//	0x07  NACK           op ID, reason code, message
//	0x08  RESUME_QUERY   op ID
//	0x09  RESUME_ANSWER  op ID, bytes held, chunks held, complete flag
//	0x0a  SUMMARY        op ID, key, size, hash, time, producer summary bytes
//	0x0b  ERROR          reason code, message
//	0x0c  PING           sequence, send time            (probe-class)
//	0x0d  PONG           sequence, echoed time, send time (probe-class)
//	0x0e  PROBE_TRAIN    train ID, index, count, send time, padding (probe-class)
//	0x0f  PROBE_REPORT   train ID, count, received, bytes, first/last arrival (probe-class)
//	0x10  PROBE_REQUEST  train ID, count, size, gap, raw flag (probe-class)
//
// Type 0 is reserved so that zeroed memory never parses. Unknown types are
// [ErrUnknownFrame]: a new frame type needs a new protocol version, which
// Hello/Welcome negotiate ([Negotiate], [ErrUnsupportedVersion]).
//
// # Conversation
//
// The agent dials the core (mutual TLS, ALPN [ALPN]) and opens a
// bidirectional control stream: it sends Hello, the core answers Welcome
// (or Error with CodeVersion / CodeUnknownAgent and closes). The control
// stream then carries ProbeRequest and ProbeReport, and a final Error when
// either side shuts down.
//
// Each op travels on its own bidirectional stream, whose RFC 9218 urgency is
// the op's priority, so a critical op overtakes a bulk transfer in flight:
//
//	agent: OpHeader                           what the op is and how it is encoded
//	core:  Ack                                already applied (a redelivery)
//	     | Nack                               refused (too large, base mismatch, quota…)
//	     | ResumeAnswer                       plain bytes already held (0 for a new op)
//	agent: Data..., Commit                    chunks from the one holding Held on
//	core:  Ack | Nack                         after verify, store and fsync
//
// An op of one chunk is pipelined: the agent sends OpHeader, Data and
// Commit at once, in one write, and the core answers with Ack or Nack
// alone, no ResumeAnswer, which would cost a round trip per small op if
// waited for and a packet if sent. ResumeQuery asks for the same answer
// without starting a transfer.
//
// With CapOpsPerStream offered in Hello and granted in Welcome, one op
// stream may carry several such ops back to back (docs/wire.md, "Several
// ops per stream"): up to MaxOpsPerStream, each whole (OpHeader, at most
// one Data of at most MaxPackedOpData bytes, Commit; no ResumeQuery, no
// lane, no Summary), in one write, then the stream's end. The core answers
// each op with its own Ack or Nack, in the order of the ops.
//
// With CapLane offered in Hello and granted in Welcome, the agent may set
// OpHeader.Lane on an op of more than one chunk: the conversation is the
// same, but its DATA frames (the same bytes) travel on the rate-paced data
// lane (package wire/lane) beside the QUIC connection: each lane transfer
// carries the frames of consecutive chunks, its ID is LaneTransfer (8 bytes
// big-endian) ‖ index of its first chunk (8 bytes big-endian), its offsets
// start at 0, and its urgency is the op's priority. The agent sends
// Commit once every lane transfer has been delivered; the core's answers
// stay on the stream, so exactly-once is decided there as before. The
// agent keeps at most max(8 MiB, 2 × (ChunkSize + 4096)) encoded bytes in
// flight, counted from its oldest chunk not yet delivered; the core holds
// at most twice that per op and Nacks (ErrTooLarge) beyond it.
//
// A summary-only op goes as Summary → Ack | Nack on a stream of its own;
// that Ack means "summary stored" and the op stays queued for its full
// payload, sent later with OpHeader.Summarized set: on a stream of its
// own, or with CapPackedBackfill granted (beside CapOpsPerStream) on a
// stream of several ops, as any whole small op.
//
// Offsets are positions in the plain (decoded) payload. Each Data frame
// carries one independently encoded chunk whose plain offset is a multiple
// of OpHeader.ChunkSize; the core decodes chunks as they arrive and keeps
// only the plain bytes beyond what it holds. That is what lets a transfer
// resume under other sync parameters (the chunk size changes with the link
// class): Held need not be a boundary of the new chunk size, and the agent
// restarts at the chunk that contains it. OpHeader.Offset and Commit's
// Bytes and Hash are informational (zero when not given); the core checks
// the assembled payload against OpHeader.PayloadHash.
//
// Ping/Pong and probe trains go as QUIC datagrams (RFC 9221; encrypted by
// QUIC, but paced by its congestion controller, which caps bursts near 10
// packets) or, for trains that must leave back to back, as raw UDP packets
// on the QUIC socket outside QUIC ([SealProbe], [OpenProbe]): a leading
// byte with the top two bits 0 ([ProbeMagic]) so quic-go hands them to
// Transport.ReadNonQUICPacket, the session from Welcome, the frame, and a
// truncated HMAC-SHA256 tag under a key both ends derive from the TLS
// exporter ([DeriveProbeKey]). Only probe-class frames may be sealed.
//
// # Errors and reason codes
//
// [Code] is the reason carried by Nack and Error. [CodeOf] is the one place
// where errors become codes and [ErrorFromCode] the one place where codes
// become errors again: a received code yields a [*ProtocolError] that
// errors.Is matches against its code's sentinel (ErrBaseMismatch, ErrQuota,
// ...). Other packages' errors either wrap one of those sentinels or
// implement [Coder].
//
// # Main types
//
//   - [Frame]: Type, Append(b) ([]byte, error), Len; one struct per type
//     (Hello, Welcome, OpHeader, Data, Commit, Ack, Nack, ResumeQuery,
//     ResumeAnswer, Summary, Error, Ping, Pong, ProbeTrain, ProbeReport,
//     ProbeRequest).
//   - [Parse] for buffers, [ReadFrame] and [WriteFrame] for streams, and
//     [Reader] for a stream that reuses one body buffer (a receiver's hot
//     path: about 2× an io.ReadFull of the same bytes, against 10-20×
//     for a fresh buffer grown per frame), optionally reserved in a
//     [Budget] and limited to the frames that may come next
//     ([Reader.ReadFrameOf]).
//   - [ProbeKey], [SealProbe], [OpenProbe] for raw probe packets.
//
// # Caveats
//
//   - Parse returns byte-slice fields (Data.Chunk, Summary.Producer) that
//     alias its input; ReadFrame allocates a fresh body per frame, so its
//     results are the caller's; Reader's results live until its next read
//     (or Free).
//   - Codec modes and hashes are opaque here: Mode is a codec.Mode as a
//     uint8 and hashes are SHA-256 as [32]byte; wire does not import codec.
//   - Timestamps in Ping/Pong/probe frames are durations on the sender's
//     own monotonic clock; only differences on one host mean anything.
//   - Probe tags stop forgery, not replay: receivers drop repeated train
//     indices and ping sequence numbers.
//   - Append refuses values it cannot encode (numbers past 2^62-1, a
//     negative duration, an over-long key) with an error and leaves b
//     unchanged; it never panics.
package wire
