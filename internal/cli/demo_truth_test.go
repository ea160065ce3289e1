package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linksim"
)

// truthErrors are the per-sample errors of what the agent showed against
// linksim's configured figures, over every step after truthSettle.
type truthErrors struct {
	bw, rtt, lossPoints []float64 // |measured − true| / true for bw and RTT; |Δ| in points for loss
	right, judged       int       // samples whose class was right
}

// rightClasses are the classes a demo step's link may show: the profiles
// of fiber (100 Mbit/s up) and broadband (10 Mbit/s up) sit on a bandwidth
// threshold of docs/design.md#link-classes, so either neighbour is right.
var rightClasses = map[string][]edgesync.LinkClass{
	"fiber":         {edgesync.Fiber, edgesync.Broadband},
	"lte":           {edgesync.Mobile},
	"satellite-geo": {edgesync.Satellite},
	"outage":        {edgesync.Intermittent},
	"broadband":     {edgesync.Broadband, edgesync.Mobile},
	// The drain's step: satellite-geo again.
	"satellite-only": {edgesync.Satellite},
}

func (e *truthErrors) add(steps []truthStep) {
	for _, st := range steps {
		r := truthRows([]truthStep{st})[0]
		for _, s := range st.samples {
			if s.at.Sub(st.start) < truthSettle {
				continue
			}
			e.judged++
			if slices.Contains(rightClasses[st.name], s.class) {
				e.right++
			}
			if r.down {
				e.lossPoints = append(e.lossPoints, abs(s.loss-1)*100)
				continue
			}
			if s.bw > 0 {
				e.bw = append(e.bw, abs(s.bw-r.trueBw)/r.trueBw)
			}
			if s.rtt > 0 {
				e.rtt = append(e.rtt, abs(float64(s.rtt-r.trueRTT))/float64(r.trueRTT))
			}
			e.lossPoints = append(e.lossPoints, abs(s.loss-r.trueLoss)*100)
		}
	}
}

// stepErrorTable gives one line per step with its errors' p50/p90: where
// the benchmark's p90 comes from.
func stepErrorTable(steps []truthStep) string {
	var b strings.Builder
	for _, st := range steps {
		var e truthErrors
		e.add([]truthStep{st})
		right := 0.0
		if e.judged > 0 {
			right = float64(e.right) / float64(e.judged) * 100
		}
		fmt.Fprintf(&b, "%-14s n=%-3d bw %5.1f%% / %5.1f%%  rtt %5.1f%% / %5.1f%%  loss %4.1f / %4.1f pp  class %3.0f%%\n",
			st.name, e.judged, quantile(e.bw, 0.5)*100, quantile(e.bw, 0.9)*100, quantile(e.rtt, 0.5)*100,
			quantile(e.rtt, 0.9)*100, quantile(e.lossPoints, 0.5), quantile(e.lossPoints, 0.9), right)
	}
	return b.String()
}

// truthTrace gives every sample: second into the step, class, bandwidth,
// RTT and loss (EDGESYNC_TRUTH_TRACE=FILE appends it to FILE).
func truthTrace(steps []truthStep) string {
	var b strings.Builder
	for _, st := range steps {
		fmt.Fprintf(&b, "%s (true %s):", st.name, fmtBps(float64(st.profile.Up.RateBps)))
		for _, s := range st.samples {
			fmt.Fprintf(&b, " %.0fs:%s/%s/%s/%.1f%%", s.at.Sub(st.start).Seconds(), s.class, fmtBps(s.bw), s.rtt.Round(time.Millisecond), s.loss*100)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// BenchmarkEstimateLoaded runs the demo (its link walk fiber → lte →
// satellite-geo → outage → broadband, 15 s a step, under its workload:
// the alarm stream, sensor records, analytics and a 16 MiB file) and
// compares what the agent's status showed each second, from 5 s into a
// step, with linksim's configured figures: p50 and p90 of the bandwidth
// and RTT error (relative), of the loss error (percentage points) and the
// share of seconds with the right class. About 2 minutes an iteration:
//
//	go test -run '^$' -bench EstimateLoaded -benchtime 1x ./internal/cli/
//
// EDGESYNC_DEMO_DURATION sets the walk's length (75s).
func BenchmarkEstimateLoaded(b *testing.B) {
	duration := 75 * time.Second
	if v := os.Getenv("EDGESYNC_DEMO_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		duration = d
	}
	var e truthErrors
	for i := 0; i < b.N; i++ {
		var out bytes.Buffer
		d := &demo{env: Env{Stdout: &out, Stderr: &out}, dir: b.TempDir(), step: duration / 5, large: 16 << 20}
		if err := d.run(context.Background()); err != nil {
			b.Fatalf("demo: %v\n%s", err, out.String())
		}
		e.add(d.truth)
		b.Logf("per step, from %s in (bandwidth error p50/p90, RTT error p50/p90, loss error p50/p90 in points, right class):\n%s", truthSettle, stepErrorTable(d.truth))
		if path := os.Getenv("EDGESYNC_TRUTH_TRACE"); path != "" {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(f, "run %d:\n%s", i, truthTrace(d.truth))
			f.Close()
		}
		if i == 0 {
			var table bytes.Buffer
			d.printTruth(&table)
			b.Logf("%s", table.String())
		}
	}
	b.ReportMetric(quantile(e.bw, 0.5)*100, "bw_err_p50_%")
	b.ReportMetric(quantile(e.bw, 0.9)*100, "bw_err_p90_%")
	b.ReportMetric(quantile(e.rtt, 0.5)*100, "rtt_err_p50_%")
	b.ReportMetric(quantile(e.rtt, 0.9)*100, "rtt_err_p90_%")
	b.ReportMetric(quantile(e.lossPoints, 0.5), "loss_err_p50_pp")
	b.ReportMetric(quantile(e.lossPoints, 0.9), "loss_err_p90_pp")
	if e.judged > 0 {
		b.ReportMetric(float64(e.right)/float64(e.judged)*100, "right_class_%")
	}
}

// The table's medians and the benchmark's errors are computed from the
// samples after truthSettle, against the uplink's figures.
func TestTruthRows(t *testing.T) {
	start := time.Now()
	bb := linksim.Broadband()
	st := truthStep{name: "broadband", profile: bb, start: start}
	for i := range 20 {
		s := truthSample{at: start.Add(time.Duration(i) * time.Second), class: edgesync.Broadband, bw: 9e6, rtt: 22 * time.Millisecond, loss: 0.002}
		if i < 5 {
			s.class, s.bw, s.loss = edgesync.Intermittent, 1e6, 0.5 // before truthSettle: left out
		}
		st.samples = append(st.samples, s)
	}
	r := truthRows([]truthStep{st})[0]
	if r.n != 15 || r.bw != 9e6 || r.rtt != 22*time.Millisecond || r.loss != 0.002 {
		t.Fatalf("row %+v: want 15 samples at 9 Mbit/s, 22 ms, 0.2 %%", r)
	}
	if len(r.classes) != 1 || r.classes[0].class != edgesync.Broadband || !near(r.bwErr, 0.1) || !near(r.lossErrPoint, 0.1) {
		t.Fatalf("row %+v: want broadband only, 10 %% bandwidth error, 0.1 points of loss", r)
	}
	var e truthErrors
	e.add([]truthStep{st})
	if e.judged != 15 || e.right != 15 || len(e.bw) != 15 || !near(quantile(e.bw, 0.9), 0.1) {
		t.Fatalf("errors %+v", e)
	}
}

func near(a, b float64) bool { return abs(a-b) < 1e-9 }
