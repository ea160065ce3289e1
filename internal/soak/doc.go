// Package soak holds the tests that run real `edge-sync core` and
// `edge-sync agent` processes, built once from this module, for a while
// under faults and hostile peers.
//
// # Basics
//
//   - TestHostileMemoryBound and BenchmarkHostileMemory: 100 hostile
//     streams and 4 hostile connections against one core process; the
//     core's peak RSS (VmHWM from /proc) must stay under 256 MiB, and the
//     benchmark reports it beside the idle core's RSS of the same run.
//   - TestSoak: an agent and a core process with a linksim relay between
//     them whose class changes, outages, SIGKILLs of both at random
//     (seeded) moments, a hostile client beside the agent, and producers
//     putting ops of every priority and kind through the control API. At
//     the end every accepted op must be at the core exactly once and
//     byte-identical (or superseded by a newer version of its key).
//   - BenchmarkGoodputProcesses and BenchmarkPutLatencyProcesses: what a
//     user waits, from the producer's put until the core stores the op,
//     with the default config beside every batch interval at 0: a 16 MiB
//     op, and 1 KiB ops on a quiet link, in a stream and at priority
//     critical, through linksim relays (linked_test.go starts the
//     processes).
//
// go test -run Soak runs the short form (-soak.duration, 20 s of faults);
// the long form is go test -run Soak -timeout 0 ./internal/soak
// -soak.duration=20m, with -soak.seed to replay a run (each run prints its
// seed). The soak's flags come after the package: go test hands every
// flag it does not know, and all that follows, to the test binary, so
// flags before the package would test the current directory instead.
//
// # Caveats
//
// Linux only: RSS is read from /proc/PID/status. The package has no code
// of its own; nothing imports it.
package soak
