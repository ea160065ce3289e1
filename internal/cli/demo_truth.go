package cli

import (
	"fmt"
	"io"
	"slices"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/linksim"
)

// The demo's truth table (docs/linkmon.md, "Under the agent's own load"):
// at the end, per step of the walk, the link's true figures as linksim
// shapes them beside the median of what the agent showed (its status, read
// on every tick of the live view), and the classes it showed with their
// shares.

// truthSettle is how long into a step the agent's figures are left out of
// the medians: the detection bounds (BenchmarkDetection, p95 2.5 s) and
// the loss window's first seconds.
const truthSettle = 5 * time.Second

// truthStep is one step of the walk and what the agent showed during it.
type truthStep struct {
	name    string
	profile linksim.Profile
	start   time.Time
	samples []truthSample
}

type truthSample struct {
	at        time.Time
	class     edgesync.LinkClass
	bw        float64
	rtt       time.Duration
	loss      float64
	connected bool
}

// noteTruthStep records that the walk entered st now. Called with d.mu
// held.
func (d *demo) noteTruthStep(st demoStep, at time.Time) {
	d.truth = append(d.truth, truthStep{name: st.name, profile: st.profile, start: at})
}

// noteTruth records what the agent's status showed, in the current step
// (the drain counts to the last one).
func (d *demo) noteTruth(st agent.LinkStatus, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.truth) == 0 {
		return
	}
	s := &d.truth[len(d.truth)-1]
	s.samples = append(s.samples, truthSample{at: at, class: st.Class, bw: st.Figures.BandwidthBps,
		rtt: st.Figures.RTT, loss: st.Figures.Loss, connected: st.Connected})
}

// truthRow is one step's line of the table.
type truthRow struct {
	name                string
	trueBw, trueLoss    float64 // uplink rate; one-way loss (the monitor's figure)
	trueRTT             time.Duration
	down                bool
	bw, loss            float64 // medians after truthSettle
	rtt                 time.Duration
	n                   int // samples in the medians
	classes             []classShare
	bwErr, lossErrPoint float64 // |measured − true| / true; percentage points
}

type classShare struct {
	class edgesync.LinkClass
	share float64
}

// truthRows computes the table from the recorded steps.
func truthRows(steps []truthStep) []truthRow {
	var rows []truthRow
	for _, st := range steps {
		p := st.profile
		r := truthRow{name: st.name, trueBw: float64(p.Up.RateBps), trueLoss: p.Up.LossRate,
			trueRTT: p.Up.Delay + p.Down.Delay + (p.Up.Jitter+p.Down.Jitter)/2,
			down:    p.Outages != nil && p.Outages.Up < time.Millisecond}
		var bws, losses []float64
		var rtts []time.Duration
		count := map[edgesync.LinkClass]int{}
		for _, s := range st.samples {
			if s.at.Sub(st.start) < truthSettle {
				continue
			}
			count[s.class]++
			r.n++
			if s.bw > 0 {
				bws = append(bws, s.bw)
			}
			if s.rtt > 0 {
				rtts = append(rtts, s.rtt)
			}
			losses = append(losses, s.loss)
		}
		r.bw, r.rtt, r.loss = medianOf(bws), medianOf(rtts), medianOf(losses)
		for c, n := range count {
			r.classes = append(r.classes, classShare{c, float64(n) / float64(r.n)})
		}
		slices.SortFunc(r.classes, func(a, b classShare) int {
			if a.share != b.share {
				if a.share > b.share {
					return -1
				}
				return 1
			}
			return int(a.class) - int(b.class)
		})
		if r.trueBw > 0 && r.bw > 0 {
			r.bwErr = abs(r.bw-r.trueBw) / r.trueBw
		}
		r.lossErrPoint = abs(r.loss-r.trueLoss) * 100
		if r.down {
			r.lossErrPoint = abs(r.loss-1) * 100
		}
		rows = append(rows, r)
	}
	return rows
}

func abs(x float64) float64 { return max(x, -x) }

func medianOf[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// printTruth prints the table.
func (d *demo) printTruth(w io.Writer) {
	d.mu.Lock()
	rows := truthRows(d.truth)
	d.mu.Unlock()
	fmt.Fprintf(w, "\nthe link's true figures (uplink) beside the median of what the agent showed, from %s into each step:\n", truthSettle)
	fmt.Fprintf(w, "%-14s %-30s %-30s %s\n", "step", "true: bw / rtt / loss", "measured: bw / rtt / loss", "class shown")
	for _, r := range rows {
		truth := fmt.Sprintf("%s / %s / %.1f%%", fmtBps(r.trueBw), r.trueRTT, r.trueLoss*100)
		if r.down {
			truth = "down / - / 100%"
		}
		meas := "-"
		if r.n > 0 {
			meas = fmt.Sprintf("%s / %s / %.1f%%", fmtBps(r.bw), r.rtt.Round(time.Millisecond), r.loss*100)
		}
		var cls string
		for i, c := range r.classes {
			if i > 0 {
				cls += ", "
			}
			cls += fmt.Sprintf("%s %.0f%%", c.class, c.share*100)
		}
		fmt.Fprintf(w, "%-14s %-30s %-30s %s\n", r.name, truth, meas, cls)
	}
}
