// Package budget accounts an endpoint's bytes against a data allowance
// (a satellite or cellular plan) and tells the sender, by priority,
// whether an op may go now (docs/budget.md).
//
// It is a package of its own, beside linkmon rather than inside agent,
// because it is a small piece of policy with its own state file and no
// use for the agent's internals: the agent wraps its socket with Conn,
// asks Decide at lease time and chunk boundaries, and shows Status.
//
// # Main types
//
//   - [Config] is one endpoint's allowance, period (a calendar month, N
//     calendar days, or a fixed duration) with its reset time and zone,
//     the reserve only critical and schema ops may spend, the shares at
//     which each ordinary priority stops, and optional per-class
//     allowances.
//   - [Budget] (Open, Serve(ctx), Close) keeps the period's spend, by
//     link class and by priority, in a JSON file replaced atomically
//     (internal/atomicfile). Serve renews the period at its end.
//   - [Conn] wraps the endpoint's net.PacketConn and counts every
//     datagram it sends: QUIC's packets and retransmissions, the data
//     lane's, and the link monitor's probes.
//
// # Caveats
//
//   - Spend is written PersistStep ahead of what is sent, before a
//     datagram is handed to the socket (Reserve): after SIGKILL the budget
//     counts between the bytes sent and PersistStep (plus the datagrams
//     being written then) more; it never forgets bytes sent. A clean Close
//     writes the exact figure. A disk that refuses the write is logged and
//     sending goes on.
//   - UDP payload bytes are counted, not the 28 (IPv4) or 48 (IPv6) bytes
//     of IP and UDP header under each datagram, nor what the agent
//     receives. A plan that bills them needs an allowance a few per cent
//     lower.
//   - The per-priority figures are the op data the sender reports; the
//     rest of the spend is overhead, counted but not attributed.
package budget
