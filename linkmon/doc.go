// Package linkmon measures a link, classifies it (fiber, broadband, mobile,
// satellite, intermittent) with hysteresis, and turns the class into the
// sync parameters the sender uses.
//
// # Basics
//
// A Measurement is one observation: bandwidth, RTT, jitter, loss, time,
// method (active, passive, both) and whether it is stale. Measurements come
// from active probes (pings summarised by SummarizePings, packet trains
// measured by TrainEstimate and MedianEstimate) and from real traffic
// (PassiveEstimator over ConnSample snapshots of a QUIC connection plus a
// DeliveryMeter the sender reports acknowledged bytes into); Combine merges
// the two.
//
// A Classifier turns the stream of measurements into a LinkClass with the
// rules of DESIGN.md: medians over a recent window, the worse of the two
// figures for links that fit no row, hysteresis (a margin and MinSamples
// consecutive samples), intermittent on an outage or sustained loss. Each
// change is reported as a ClassChange with a human-readable reason. The
// Classifier is pure: time comes from the measurements, so tests feed it
// explicit timestamps.
//
// An Adjuster maps a class and the measured bandwidth to SyncParameters:
// DESIGN.md's table, chunk size and concurrency interpolated within each
// class's bandwidth range, per-class overrides from config. A Pin (from
// transport.switch) overrides the class or mode; Adjuster.Effective applies
// it.
//
// A Budget keeps active probing within a fraction of the capacity (2 % over
// any minute by default); ProbeSize picks a train size whose dispersion at
// the bottleneck stays near TargetDispersion.
//
// Config groups all of it with the probe and sample intervals and timeouts.
//
// # Caveats
//
// The network side (the active prober, the core's responder, the Monitor
// with its sampling loop, history and events) is not in this package yet.
// The classifier expects light samples several times a second: the median
// of 9 samples and MinSamples of 3 are tuned for 4 samples a second. The
// monitor should attach its latest train estimate to every answered light
// sample (bandwidth samples only every 5 s would need five probes to move
// the median) and probe early when RTT or loss jumps. With
// no exact bandwidth sample (only an app-limited sender's lower bounds)
// the class rests on RTT alone.
package linkmon
