// Package lane is a rate-paced, loss-tolerant data lane that runs beside
// an edge-sync QUIC connection, on the same UDP socket, to fill long and
// lossy links that one Cubic-controlled QUIC connection cannot.
//
// # Why
//
// quic-go's congestion control (Cubic/Reno) halves its window on every
// loss and is not pluggable: through a 600 ms RTT link losing 1 % of
// packets, one connection reaches 0.20 of 2 Mbit/s and 0.03 of 10 Mbit/s.
// The lane paces at the rate a BBR-like model measures (delivery-rate
// samples, max-filtered over 10 rounds, × gain; at most 2 × BDP in flight,
// never less than 20 packets so that the receiver answers on count, not
// after its 20 ms ack delay: docs/lane.md, "The window's floor")
// and simply retransmits what was lost: random loss costs the lost packets,
// not the rate.
//
// # Main types
//
//   - [Demux] is the single reader of a quic.Transport's non-QUIC packets
//     (Transport.ReadNonQUICPacket allows one). It routes lane packets
//     (leading byte 0x20-0x2d) to their session by tag and other leading
//     bytes (e.g. wire.ProbeMagic, 0x2e) to handlers registered with Handle.
//   - [Session] is one lane over one established mutual-TLS *quic.Conn.
//     Both ends derive an AES-256-GCM key and session tags from the TLS
//     exporter ("edge-sync lane v1"), so nothing extra is negotiated. Send
//     carries (op id, offset, bytes) to the peer's Config.Deliver, in order
//     per op, and returns when the peer's Deliver has returned for every
//     byte: the caller then sends its Commit over QUIC, which keeps
//     exactly-once on the QUIC side. A Send with a lower urgency overtakes
//     larger ones at the next packet (strict priority, oldest transfer
//     first within an urgency); retransmissions follow the same order.
//
// # Packets
//
//	kind 0x20 | session tag (6) | packet number (6) | AES-GCM(frames) | tag (16)
//
// Frames: DATA (transfer, offset; the first segment also carries op id,
// base offset, length and urgency), FEEDBACK (ACK ranges with ack delay,
// free receive window, closed transfers), RESET (abandoned transfer), PING.
// The header is authenticated; the nonce is direction ‖ packet number, so
// replays are caught by the receiver's packet-number set and counted, as
// are forgeries (Stats.Forged, Stats.Replayed, Demux.Stats).
//
// # Limits
//
// Packets are at most MaxPacketSize bytes (default DefaultPacketSize, as
// quic-go before PMTU discovery); a feedback frame holds at most 64 ACK
// ranges and 80 closed ranges; at most MaxOpenTransfers transfers are
// open per session (further Sends wait); received data held per session is
// bounded by Config.MaxBufferedBytes (beyond it packets are refused,
// unacknowledged, and sent again later; the free space is advertised so
// the sender slows down) and, when set, by Config.Budget, a bound shared
// with other holders of memory (the core's frames in flight): a refusal
// there is handled the same way, except for the next in-order bytes of a
// transfer with data held behind them, which are taken past the budget
// (at most a packet per transfer) because they free that data.
//
// # Caveats
//
//   - Lane packets do not reset QUIC's idle timer: the QUIC connection needs
//     KeepAlivePeriod (wire.QUICConfig sets it).
//   - quic-go queues at most 32 non-QUIC packets for ReadNonQUICPacket and
//     drops beyond that: give the transport a [Conn] (WrapConn), which
//     hands them to the demux as the socket is read, so that a burst
//     waits in the kernel's buffer (RaiseBuffers) instead.
//   - The lane has no ProbeRTT phase: the min-RTT filter (10 s) is
//     refreshed by the drain phase of the gain cycle.
//   - Startup from a cold estimate takes several RTTs on long links; give
//     Config.InitialRate (linkmon's last capacity) to start at the link's
//     rate ("careful resume"): a stale hint leaves the filter in 3 rounds.
//   - The lane does not compete fairly with Cubic flows on a shared
//     bottleneck (like BBRv1); SetMaxRate caps it.
package lane
