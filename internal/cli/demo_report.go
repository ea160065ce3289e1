package cli

import (
	"fmt"
	"os"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/statuspage"
	"github.com/edge-sync/edge-sync/linksim"
)

// The demo's --report: one HTML page with the status page's plots over the
// whole walk (the true link beside what the agent measured, the class, the
// mode, the queue), the latency per priority and the verified summary.
// The measured side is the agent's own timeline; the demo records only
// when each step of the walk began.

// demoReport is the report being gathered.
type demoReport struct {
	f     *os.File
	steps []statuspage.Step
	// Filled by verify.
	byPrio   map[edgesync.Priority]*tally
	problems []string
	done     bool // written (or failed to be) and closed
}

// openReport creates the report's file at once, so that a path that
// cannot be written fails before the walk rather than after it.
func (d *demo) openReport(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return usagef("demo", "--report: %v", err)
	}
	d.rep = &demoReport{f: f}
	return nil
}

// discardReport removes the report's file when the demo ended before it
// was written.
func (d *demo) discardReport() {
	if d.rep == nil || d.rep.done {
		return
	}
	// The demo's own error is what the user needs; an empty file that
	// cannot be removed is no news beside it.
	d.rep.f.Close()
	os.Remove(d.rep.f.Name())
}

// noteStep records that the walk entered st now.
func (d *demo) noteStep(st demoStep) {
	if d.rep != nil {
		d.rep.steps = append(d.rep.steps, trueStep(st.name, st.profile, time.Now()))
	}
}

// noteVerified keeps what verify found for the report.
func (d *demo) noteVerified(byPrio map[edgesync.Priority]*tally, problems []string) {
	if d.rep != nil {
		d.rep.byPrio, d.rep.problems = byPrio, problems
	}
}

// reportAfter writes the report, if one was asked for, once verify has
// returned verr (the agent still runs), and returns verr (or the report's
// error when verify passed).
func (d *demo) reportAfter(verr error) error {
	if d.rep == nil {
		return verr
	}
	err := d.writeReport()
	if cerr := d.rep.f.Close(); err == nil {
		err = cerr
	}
	d.rep.done = true
	if err != nil {
		err = fmt.Errorf("demo: report %s: %w", d.rep.f.Name(), err)
		if verr == nil {
			return err
		}
		fmt.Fprintln(d.env.Stderr, err)
		return verr
	}
	fmt.Fprintf(d.env.Stdout, "report written to %s\n", d.rep.f.Name())
	return verr
}

func (d *demo) writeReport() error {
	tl, err := d.agent.Timeline("core", time.Hour)
	if err != nil {
		return err
	}
	var es agent.EndpointStats
	if stats := d.agent.Stats(); len(stats) > 0 {
		es = stats[0]
	}
	modes := map[edgesync.LinkClass]edgesync.SyncMode{}
	for c, p := range d.agent.Config().Profiles {
		modes[c] = p.Params.Mode
	}
	d.mu.Lock()
	r := statuspage.Report{Agent: demoAgent, Steps: d.rep.steps, End: time.Now(), Timeline: tl, Modes: modes, Stats: es,
		Accepted: len(d.sent), Refused: d.refused, Problems: d.rep.problems}
	d.mu.Unlock()
	for _, p := range edgesync.Priorities() {
		o := statuspage.PriorityOutcome{Priority: p}
		if t := d.rep.byPrio[p]; t != nil {
			o.Sent, o.Delivered, o.Superseded = t.sent, t.delivered, t.superseded
		}
		ps := es.Priorities[p.String()]
		o.AvgLatency, o.MaxLatency = ps.AvgLatency, ps.MaxLatency
		r.Priorities = append(r.Priorities, o)
	}
	return statuspage.WriteReport(d.rep.f, r)
}

// trueStep is a step of the walk as linksim shapes it: the rate from agent
// to core, the round trip's delay (with half of each way's jitter) and
// loss.
func trueStep(name string, p linksim.Profile, at time.Time) statuspage.Step {
	loss := func(d linksim.Direction) float64 {
		l := d.LossRate
		if d.Bursty != nil {
			l = 1 - (1-l)*(1-d.Bursty.MeanLoss())
		}
		return l
	}
	return statuspage.Step{
		Name: name, Summary: p.Summary, At: at,
		Down:         p.Outages != nil && p.Outages.Up < time.Millisecond,
		BandwidthBps: float64(p.Up.RateBps),
		RTT:          p.Up.Delay + p.Down.Delay + (p.Up.Jitter+p.Down.Jitter)/2,
		Loss:         1 - (1-loss(p.Up))*(1-loss(p.Down)),
	}
}
