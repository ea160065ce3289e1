package linkmon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// The monitor's bandwidth probes and check trains: how a train is sized,
// what the budget allows, and what an estimate changes.

// SatelliteBudgetFraction caps the probe budget while the link is
// satellite: 1 % of its capacity (pings included), half the default.
const SatelliteBudgetFraction = 0.01

// curBudget returns the probe budget in force.
func (m *Monitor) curBudget() *Budget {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.budget
}

// linkRef is the capacity a delivery rate is judged against
// (senderLimited): the latest measured by trains. Judged against the
// capacity itself, which a link-filling delivery rate sets, a sender whose
// rate falls (a rate model that estimated the link low, a transfer's
// tail) walked the capacity down 20 % at a time: each rate within 20 % of
// the previous one counted as the link's (TestSatelliteFigureAfterTransfer:
// 0.89 Mbit/s on a 2 Mbit/s link under a 1.7 Mbit/s sender). Called with
// m.mu held.
func (m *Monitor) linkRef() float64 {
	if m.trainBps > 0 {
		return m.trainBps
	}
	return m.capBps
}

// budgetCapacity is the capacity the budget is computed on: the latest
// estimate, scaled so that a satellite link gets SatelliteBudgetFraction.
// Called with m.mu held.
func (m *Monitor) budgetCapacity() float64 {
	// While a drop seen by a check awaits its probe, the budget stays
	// sized for the capacity its recent spends were made on.
	c := max(m.capBps, m.capRef)
	if c > 0 && m.status.Class == edgesync.Satellite && m.cfg.Budget.Fraction > SatelliteBudgetFraction {
		c *= SatelliteBudgetFraction / m.cfg.Budget.Fraction
	}
	if m.probeCap != nil {
		if cb := m.probeCap(); cb > 0 && (c <= 0 || cb < c) {
			c = cb
		}
	}
	return c
}

// Measure runs a bandwidth probe now (transport.bandwidth.measure) within
// the budget and returns the resulting measurement: the new capacity with
// the latest RTT, jitter and loss. It fails with ErrNotAttached without a
// connection and ErrBudgetExhausted when the budget allows no train.
func (m *Monitor) Measure(ctx context.Context) (Measurement, error) {
	m.mu.Lock()
	p := m.prober
	m.mu.Unlock()
	if p == nil {
		return m.Latest(), fmt.Errorf("measure: %w", ErrNotAttached)
	}
	res, err := m.probe(ctx, p, false)
	lat := m.Latest()
	if err != nil {
		return lat, fmt.Errorf("measure: %w", err)
	}
	out := Measurement{BandwidthBps: res.bps, RTT: lat.RTT, Jitter: lat.Jitter, Loss: lat.Loss,
		At: m.now(), Method: MethodActive}
	return out, nil
}

type probeResult struct {
	bps float64
	// split: no train agreed with the median (splitProbe).
	split  bool
	trains int // trains sent
	bytes  int
	spend  time.Duration // spacing the budget asks before the next probe
}

// probePlan is what one probe sizes and judges its trains by, read when
// it starts.
type probePlan struct {
	// packets per train; a train that finds the link slower shrinks the
	// next ones.
	packets int
	jitter  time.Duration
	// ref is the capacity a train is judged against: the estimate, or the
	// one before a drop that checks saw and no probe has confirmed yet.
	ref float64
	// bcap is the capacity the budget is computed on.
	bcap   float64
	budget *Budget
	// yieldFrom, when set, is the probe's start: it sends no more trains
	// once the agent's own data began to be acknowledged after it
	// (sampler.starting: they would queue behind that data).
	yieldFrom time.Time
}

// yields reports whether the probe stops before its next train: the
// agent's own data began to be acknowledged since it started.
func (pl *probePlan) yields(d *DeliveryMeter) bool {
	if pl.yieldFrom.IsZero() {
		return false
	}
	start, _ := d.run()
	return start.After(pl.yieldFrom)
}

// probe runs one bandwidth probe: up to TrainsPerProbe trains sized by
// ProbeSize, each taken from the budget, sent one after the other; the
// estimate is their median. The train estimate is stored for the light
// samples to carry. A probe that yields stops after the train in flight
// when the agent's own data begins meanwhile (probePlan.yieldFrom).
func (m *Monitor) probe(ctx context.Context, p *Prober, yield bool) (probeResult, error) {
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	defer cancel()
	pl := m.planProbe()
	if yield {
		pl.yieldFrom = time.Now()
	}
	res := probeResult{spend: pl.budget.Spacing(pl.bcap, m.cfg.TrainsPerProbe*pl.packets*ProbePacketSize)}
	ests, lastErr := m.sendTrains(ctx, p, &pl, &res)
	m.log.Trace("probe", "trains", res.trains, "estimates", len(ests), "error", lastErr)
	m.mu.Lock()
	m.stats.Probes++
	m.stats.Trains += res.trains
	m.stats.TrainBytes += int64(res.bytes)
	m.mu.Unlock()
	if res.trains == 0 {
		return res, fmt.Errorf("probe: %w", ErrBudgetExhausted)
	}
	m.lastPackets = pl.packets
	bps, ok := MedianEstimate(ests)
	if !ok {
		return res, fmt.Errorf("probe: %w", m.unmeasured(res.trains, pl.packets, lastErr))
	}
	m.shrink = 0
	res.bps, res.split = bps, splitProbe(ests)
	res.spend = m.adoptEstimate(bps, pl)
	return res, nil
}

// splitProbe reports whether a probe's train estimates ests leave their
// median agreeing with no other train within trainsAgree: of an odd
// number, three or more, the middle one agrees with neither neighbour; of
// an even number, the two whose mean is the median disagree. The median
// of three trains rides out one stray train, not two, and the mean of two
// follows either: on a loaded machine, among a packed drain's first
// bursts on the lte-like 10 Mbit/s link, trains read 3.07 Gbit/s, 16 and
// 5.53 Mbit/s, and the 16 stood for 4 s while the packs' app-limited
// rate held the next trains (nearlyFull; TestPackedDrainStatusTrue);
// another probe's third train went unanswered, and the mean of 10.1
// Mbit/s and 1.17 Gbit/s, 592 Mbit/s, was shown. The packs' rates are
// lower bounds, which raise a figure read too low but never lower one
// read too high: such a probe is measured again (sampler.probed).
func splitProbe(ests []float64) bool {
	v := slices.DeleteFunc(slices.Clone(ests), func(e float64) bool { return !(e > 0) || math.IsInf(e, 0) })
	if len(v) < 2 {
		return false
	}
	slices.Sort(v)
	i := len(v) / 2
	if len(v)%2 == 0 {
		return v[i]/v[i-1] > trainsAgree
	}
	return v[i]/v[i-1] > trainsAgree && v[i+1]/v[i] > trainsAgree
}

// planProbe sizes the trains of the next probe for the estimated
// capacity and jitter. Called with probeMu held.
func (m *Monitor) planProbe() probePlan {
	m.mu.Lock()
	capBps := m.capBps
	pl := probePlan{jitter: m.status.Median.Jitter, ref: max(capBps, m.capRef), bcap: m.budgetCapacity(), budget: m.budget}
	m.mu.Unlock()
	pl.packets = trainPackets(capBps, pl.jitter)
	if m.shrink > 0 {
		pl.packets = min(pl.packets, m.shrink) // the last probe went unanswered
	}
	if m.lastPackets > 0 {
		// Grow trains at most fourfold per probe: an early overestimate
		// from a short train must not turn into a flood.
		pl.packets = min(pl.packets, 4*m.lastPackets)
	}
	m.log.Trace("probe start", "packets", pl.packets, "capacity", FormatBps(capBps))
	return pl
}

// sendTrains sends the probe's trains one after the other while the
// budget allows, counting them in res, and returns the estimates of the
// measurable ones and the last error.
func (m *Monitor) sendTrains(ctx context.Context, p *Prober, pl *probePlan, res *probeResult) (ests []float64, lastErr error) {
	for i := range m.cfg.TrainsPerProbe {
		if i > 0 && pl.yields(&m.meter) {
			break
		}
		if !pl.budget.Take(m.now(), pl.packets*ProbePacketSize, pl.bcap) {
			break
		}
		tr, err := p.Train(ctx, pl.packets)
		res.trains++
		res.bytes += tr.Bytes
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if tr.OK {
			ests = append(ests, tr.Bps)
		}
		if tr.OK && pl.ref > 0 && tr.Bps < checkDrop*pl.ref {
			// The link got slower: size the next train for it, so that
			// it does not overflow the queue and wait for a report.
			pl.packets = max(MinTrainPackets, min(pl.packets, trainPackets(tr.Bps, pl.jitter)))
		}
		if slowerSettled(ests, pl.ref) {
			break
		}
		m.log.Trace("train", "packets", pl.packets, "received", tr.Received, "estimate", FormatBps(tr.Bps), "ok", tr.OK)
		drain(ctx, tr)
	}
	return ests, lastErr
}

// trainsAgree: two train estimates within this ratio of each other read
// the same link. On an idle link trains agree within a few percent; under
// the agent's own traffic and a loaded CPU one of two may read half or
// twice the link (1.03 and 4.5 Mbit/s on a 2 Mbit/s uplink;
// docs/linkmon.md, "What a loaded machine did to the figures").
const trainsAgree = 1.2

// slowerSettled reports whether a probe's first two train estimates agree
// that the link got much slower than ref: the trains were sized for the
// old link and queue long on the new one; a third adds little but delay.
// Two that disagree are not settled: their median is their mean, which
// one stray train moves by half its error, and on satellite it stands
// until the next probe 7-15 s later (TestSlowerProbeNeedsAgreeingTrains);
// the third train's median is not moved by one.
func slowerSettled(ests []float64, ref float64) bool {
	if len(ests) != 2 || !(ref > 0) {
		return false
	}
	hi, lo := max(ests[0], ests[1]), min(ests[0], ests[1])
	return hi < checkDrop*ref && hi <= trainsAgree*lo
}

// drain waits for a measured train to leave the bottleneck (at most
// 100 ms) before the next one is sent.
func drain(ctx context.Context, tr TrainResult) {
	if !tr.OK || !(tr.Bps > 0) {
		return
	}
	gap := time.Duration(float64(tr.Bytes*8) / tr.Bps * float64(time.Second))
	t := time.NewTimer(min(gap, 100*time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// unmeasured handles a probe whose trains gave no estimate, and the error
// says why. The capacity estimate stays: the trains said nothing of the
// link. It was halved while pings were answered, and the light samples
// carried the half: after the demo's outage a 10 Mbit/s link showed 4.4
// Mbit/s and went mobile because one train's report did not come
// (TestUnansweredProbeKeepsCapacity). While pings are answered the next
// probe's trains are halved instead (shrink): trains too long for a link
// that got slower overflow its queue and lose their reports. While pings
// go unanswered too, the link or the core is down (a core restart): the
// trains stay as they were, and the link comes back at the estimate.
// Called with probeMu held.
func (m *Monitor) unmeasured(trains, packets int, lastErr error) error {
	m.mu.Lock()
	answered := m.status.Missed == 0
	m.mu.Unlock()
	if answered && !errors.Is(lastErr, ErrNotAttached) {
		m.shrink = max(MinTrainPackets, packets/2)
	}
	if lastErr == nil {
		// Reports came back: the link is there, the trains told little.
		return fmt.Errorf("%d trains, none measurable: %w", trains, errUnmeasurable)
	}
	return lastErr
}

// adoptEstimate makes a probe's estimate the capacity and returns the
// spacing the budget asks before the next probe: none when the trains
// were much smaller than the new estimate asks for, so that it is
// measured again soon.
func (m *Monitor) adoptEstimate(bps float64, pl probePlan) time.Duration {
	m.mu.Lock()
	m.stats.Estimates++
	if pl.ref > 0 && bps < pl.ref/2 {
		// The link got much slower: what was spent in the last minute was
		// sized for the old link and would stop probing for a minute.
		// Account afresh against the new capacity.
		m.budget = newBudget(m.cfg.Budget)
	}
	m.capBps, m.capAt, m.capRef, m.trainBps = bps, m.now(), 0, bps
	bcap, budget := m.budgetCapacity(), m.budget
	m.mu.Unlock()
	want := trainPackets(bps, pl.jitter)
	if want > 2*pl.packets {
		return 0
	}
	return budget.Spacing(bcap, m.cfg.TrainsPerProbe*want*ProbePacketSize)
}

// errUnmeasurable: every train was answered but none could be measured.
var errUnmeasurable = errors.New("trains unmeasurable")

// jitterDispersion: a train's dispersion should be at least this many
// times the path's jitter, or the jitter of its first and last packets
// dominates the estimate.
const jitterDispersion = 10

// maxDispersion caps the lengthening for jitter.
const maxDispersion = 3 * TargetDispersion

// maxTrainPackets caps a train below ProbeSize's 1 MiB: the core reads
// raw packets through quic-go's queue of 32 non-QUIC packets, and a
// receiver that falls behind drops the rest of a long train. 384 packets
// are 36 ms at 100 Mbit/s.
const maxTrainPackets = 384

// trainPackets sizes a train: ProbeSize at the estimated capacity,
// lengthened on a jittery path so that its dispersion is at least
// jitterDispersion × jitter (within MaxProbeBytes). While the capacity is
// unknown it is the shortest train: it fits the budget's floor, and its
// estimate sizes the next probe.
func trainPackets(capBps float64, jitter time.Duration) int {
	if !(capBps > 0) {
		return MinTrainPackets
	}
	size := float64(ProbeSize(capBps))
	if d := min(jitterDispersion*jitter, maxDispersion); d > TargetDispersion {
		size = min(float64(MaxProbeBytes), max(size, capBps/8*d.Seconds()))
	}
	return min(maxTrainPackets, max(MinTrainPackets, int(math.Ceil(size/ProbePacketSize))))
}

// check sends one check train of the given length while the budget is
// spent to less than checkCeiling, and returns its result. The sampler
// spaces checks so that they take at most checkShare of the budget.
func (m *Monitor) check(ctx context.Context, p *Prober, packets int) (TrainResult, error) {
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	m.mu.Lock()
	bcap := m.budgetCapacity()
	m.mu.Unlock()
	// Checks stop at checkCeiling of the budget: the rest is the probes',
	// and a margin for a capacity estimated high.
	if !m.curBudget().Take(m.now(), packets*ProbePacketSize, checkCeiling*bcap) {
		return TrainResult{}, fmt.Errorf("check: %w", ErrBudgetExhausted)
	}
	tr, err := p.Train(ctx, packets)
	m.mu.Lock()
	m.stats.Checks++
	m.stats.Trains++
	m.stats.TrainBytes += int64(tr.Bytes)
	m.mu.Unlock()
	if err != nil {
		return tr, fmt.Errorf("check: %w", err)
	}
	return tr, nil
}
