// Package linksim is a userspace link emulator for edge-sync's tests,
// benchmarks, demo and the `edge-sync linksim` command. This kernel has no
// tc netem, so links are shaped here.
//
// # Model
//
// Each direction of a link is a bottleneck, not a policer: a packet's
// departure is max(now, last departure) + size/rate; a tail-drop queue
// bounds the bytes waiting (QueueBytes, or QueueDelay worth of bytes at the
// rate); then the packet travels for Delay plus a uniform jitter in
// [0, Jitter] (never overtaking an earlier packet unless Reorder is set).
// Random loss, Gilbert–Elliott bursty loss and LEO handover bursts drop
// packets on the wire, after they used their serialisation time. Outages
// drop every packet that arrives, or would be delivered, while the link is
// down. One scheduler goroutine per direction releases packets at their due
// time from a heap; rates stay exact because departures are computed, not
// slept.
//
// # Main types
//
//   - Profile (with Direction, GilbertElliott, Outages, Handover): a plain
//     value describing a link; Profiles and ProfileByName give the built-ins
//     (fiber, broadband, dsl, lte, satellite-geo, satellite-geo-lossy,
//     satellite-leo, intermittent, very-bad, none) with cited figures.
//   - Relay: a UDP relay on loopback between clients and one target, one
//     upstream socket per client, idle mappings expired.
//   - Conn, from Wrap: a shaping net.PacketConn usable as
//     quic.Transport{Conn: c}.
//   - Step, ParseSchedule and RunSchedule: profile changes over time.
//   - Stats, DirStats: counters per direction.
//
// # Caveats
//
// Rates count UDP payload bytes, not IP/UDP headers. Profile changes apply
// to packets arriving after the change; packets already queued keep their
// times. Outages and handovers are anchored at the moment a profile is set.
// Accuracy depends on the process getting CPU. On Linux the relay dates
// each datagram with the kernel's receive timestamp (SO_TIMESTAMPNS), so a
// briefly descheduled reader does not shift departures; a starved
// scheduler still releases late, so on a loaded machine (or under -race)
// the delivered rate at 100 Mbit/s can fall below the configured one.
// BenchmarkRelayThroughput reports the unshaped ceiling. Each direction
// holds at most 64 MiB whatever the profile says. Conn hides the wrapped
// socket's OOB and syscall methods, so quic-go runs without GSO, ECN and
// the DF bit through it.
package linksim
