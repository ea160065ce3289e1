// Package linksim is a userspace link emulator: rate, queue, delay, jitter,
// loss, outages and schedules, as a net.PacketConn wrapper or a UDP relay.
package linksim
