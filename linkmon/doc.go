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
// DeliveryMeter the sender reports each acknowledgement and its
// app-limited moments into, which gives a delivery rate); Combine merges
// the two.
//
// A Classifier turns the stream of measurements into a LinkClass with the
// rules of docs/design.md#link-classes: medians over a recent window, the
// worse of the two figures for links that fit no row, hysteresis (a margin
// and MinSamples consecutive samples), intermittent on an outage or
// sustained loss. Each
// change is reported as a ClassChange with a human-readable reason. The
// Classifier is pure: time comes from the measurements, so tests feed it
// explicit timestamps.
//
// An Adjuster maps a class and the measured bandwidth to SyncParameters:
// the table of docs/design.md#sync-parameters, chunk size and concurrency
// interpolated within each class's bandwidth range, per-class overrides
// from config. A Pin (from transport.switch) overrides the class or mode;
// Adjuster.Effective applies it. Only the Monitor uses them to derive the link state (below).
//
// A Budget keeps active probing within a fraction of the capacity (2 % over
// any minute by default); ProbeSize picks a train size whose dispersion at
// the bottleneck stays near TargetDispersion.
//
// Config groups all of it with the probe and sample intervals and timeouts,
// in one set of units (bit/s, durations, fractions) and one set of
// defaults (Default); the config package reads the file's monitor block
// onto it.
//
// # The link state
//
// A Monitor is the one owner of an endpoint's link state: the measured
// Status, the operator's Pin (SetPin), the per-class overrides
// (MonitorOptions.Profiles, SetProfile), and what follows from them, the
// effective class and SyncParameters. It publishes them three ways:
// Snapshot (a LinkState, all of one moment), Parameters (the sender's
// view: the parameters, their generation and a channel closed at the next
// change) and Subscribe (events). The pin and the overrides last as long
// as the monitor, across Stop and Restart; they are not in the status
// file.
//
// # Network side
//
// A Monitor lives as long as its endpoint: NewMonitor (restoring the last
// measured status from MonitorOptions.StatePath), Start(ctx) to measure,
// Stop to stop measuring (the state stays and still takes pins and
// overrides), Restart to measure again with a new Config, Attach when the
// agent's QUIC connection is up, Detach when it is lost, Close (which
// waits for its goroutines; Start then fails with ErrClosed, see
// docs/architecture.md#lifecycle). It pings every
// SampleInterval, probes bandwidth every ProbeInterval (stretched by the
// budget, early after an RTT or loss jump, at once when the link comes
// back), sends short check trains between probes to catch a change of
// bandwidth alone, takes a link-filling sender's delivery rate as the
// capacity instead of probing, feeds the Classifier and
// publishes LinkClassChanged and ParametersChanged events to subscribers
// without ever blocking on them (drop-oldest). Measure probes on demand.
// monitor.go holds its lifecycle and measured state, link.go the
// published link state, sampler.go the sampling goroutine, probe.go the
// bandwidth probes and check trains.
//
// A Prober is the agent's half over one connection: pings as QUIC
// datagrams, packet trains as sealed raw packets written unpaced with
// quic.Transport.WriteTo on the connection's socket (quic-go paces
// datagrams: on a 600 ms link a datagram train measures its pacer, see
// BenchmarkDatagramTrain). A Responder is the core's half: it answers
// pings and times train arrivals per registered session, answering each
// train with a ProbeReport datagram; forged packets are dropped and counted.
//
// # Caveats
//
// The classifier expects light samples several times a second: the median
// of 9 samples and MinSamples of 3 are tuned for 4 samples a second. The
// monitor attaches its latest capacity estimate to every answered light
// sample, so a new figure changes the class about 7 samples (1.75 s)
// later. On an idle link a change in bandwidth alone (same RTT) is found
// by a check train, up to 250 ms apart on fast links and sparser on slow
// ones (they get a quarter of the budget); on satellite, where the 1 %
// budget goes to the probes, only by the next probe. A sender that is
// limited by anything but the link must report OnAppLimited, or its
// delivery rate is taken as the capacity. Loss is taken as one-way from
// round-trip ping loss assuming both directions lose alike. With no exact
// bandwidth sample (only an app-limited sender's lower bounds) the class
// rests on RTT alone.
// Train estimates depend on the receiver reading promptly: quic-go queues
// only 32 non-QUIC packets, so trains are capped at 384 packets.
package linkmon
