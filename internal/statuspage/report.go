package statuspage

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/units"
)

// The demo's report: one self-contained page (inline SVG and CSS, no
// script, nothing fetched) with the status page's plots over the whole
// link walk, the true link beside what the agent measured, the latency per
// priority and the verified summary.

// Report is what the demo hands WriteReport.
type Report struct {
	Agent string
	// Steps are the link walk's steps, in order; each lasts until the
	// next one's At, the last until End.
	Steps []Step
	End   time.Time
	// Timeline is what the agent recorded over the walk (its endpoint's).
	Timeline agent.Timeline
	// Modes is the sync mode the agent uses on each class, for the
	// legend.
	Modes map[edgesync.LinkClass]edgesync.SyncMode
	// Priorities are the outcome and latency of each priority's ops.
	Priorities []PriorityOutcome
	// Stats are the agent's counters at the end.
	Stats agent.EndpointStats
	// Accepted counts the ops the agent accepted; Refused the puts it
	// refused; Problems what verification found (none when it passed).
	Accepted, Refused int
	Problems          []string
}

// Step is one stop of the link walk: the true link from linksim.
type Step struct {
	Name, Summary string
	At            time.Time
	// Down is an outage: nothing passes. Otherwise BandwidthBps is the
	// rate from agent to core, RTT the two delays (plus half the
	// jitter) and Loss the chance a round trip loses a packet.
	Down         bool
	BandwidthBps float64
	RTT          time.Duration
	Loss         float64
}

// PriorityOutcome is one row of the verified summary.
type PriorityOutcome struct {
	Priority                    edgesync.Priority
	Sent, Delivered, Superseded int
	AvgLatency, MaxLatency      time.Duration
}

// trueLink is the true link's series and step markers.
type trueLink struct {
	bandwidth, rtt, loss Series
	steps                []Marker
}

// truth turns the steps into stepped series: a value holds from its step
// to the next; an outage is a gap.
func truth(steps []Step, end time.Time) *trueLink {
	t := &trueLink{
		bandwidth: Series{Name: "true-bandwidth", Label: "true bandwidth (linksim, agent → core)", Color: trueColor, Dashed: true},
		rtt:       Series{Name: "true-rtt", Label: "true RTT (linksim)", Color: trueColor, Dashed: true},
		loss:      Series{Name: "true-loss", Label: "true loss (linksim, round trip)", Color: trueColor, Dashed: true},
	}
	for i, s := range steps {
		to := end
		if i+1 < len(steps) {
			to = steps[i+1].At
		}
		t.steps = append(t.steps, Marker{At: s.At, Attr: "data-step", Value: s.Name})
		for _, at := range []time.Time{s.At, to} {
			t.bandwidth.Points = append(t.bandwidth.Points, Point{T: at, V: s.BandwidthBps, Gap: s.Down})
			t.rtt.Points = append(t.rtt.Points, Point{T: at, V: s.RTT.Seconds(), Gap: s.Down})
			loss := s.Loss * 100
			if s.Down {
				loss = 100
			}
			t.loss.Points = append(t.loss.Points, Point{T: at, V: loss})
		}
		// The next step starts a new line: no slope between steps.
		if i+1 < len(steps) {
			t.bandwidth.Points = append(t.bandwidth.Points, Point{Gap: true, T: to})
			t.rtt.Points = append(t.rtt.Points, Point{Gap: true, T: to})
		}
	}
	return t
}

// WriteReport writes the report as one HTML page.
func WriteReport(w io.Writer, r Report) error {
	from, to := r.End, r.End
	if len(r.Steps) > 0 {
		from = r.Steps[0].At
	}
	if len(r.Timeline.Points) > 0 && r.Timeline.Points[0].At.Before(from) {
		from = r.Timeline.Points[0].At
	}
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	tl := r.Timeline
	v := reportView{R: r, OK: len(r.Problems) == 0, Duration: to.Sub(from).Round(time.Second).String(), Legend: classLegend(r.Modes)}
	v.Link = linkPlots(tl, from, to, truth(r.Steps, to))
	v.Queue = queuePlot(tl, from, to)
	v.Latency = latencyChart(r.Priorities)
	for _, s := range r.Steps {
		v.Steps = append(v.Steps, stepRow{Name: s.Name, Summary: s.Summary, At: s.At.Sub(from).Round(time.Second).String()})
	}
	for _, p := range r.Priorities {
		v.Rows = append(v.Rows, outcomeRow{Priority: p.Priority.String(), Sent: p.Sent, Delivered: p.Delivered, Superseded: p.Superseded,
			Avg: dur(p.AvgLatency), Max: dur(p.MaxLatency)})
	}
	es := r.Stats
	var plain, wire int64
	for name, ms := range es.Modes {
		plain += ms.PlainBytes
		wire += ms.WireBytes
		v.Savings = append(v.Savings, fact{K: "mode " + name, V: fmt.Sprintf("%d transfers, %s → %s on the wire", ms.Ops, units.FormatBytes(ms.PlainBytes), units.FormatBytes(ms.WireBytes)), Attr: "mode-" + name})
	}
	sort.Slice(v.Savings, func(i, j int) bool { return v.Savings[i].K < v.Savings[j].K })
	if plain > 0 {
		v.Savings = append(v.Savings, fact{K: "in all", V: fmt.Sprintf("%s of payload sent as %s (%.0f %% saved)", units.FormatBytes(plain), units.FormatBytes(wire), 100*(1-float64(wire)/float64(plain))), Attr: "all"})
	}
	v.Savings = append(v.Savings,
		fact{K: "summaries sent first", V: fmt.Sprintf("%d (holding back %s until the link improved)", es.Summaries, units.FormatBytes(es.SummaryBytes)), Attr: "summaries"},
		fact{K: "mode switches", V: fmt.Sprint(es.ModeSwitches), Attr: "mode-switches"},
		fact{K: "reconnects", V: fmt.Sprint(max(0, es.Connects-1)), Attr: "reconnects"})
	body, err := execute(reportTmpl, v)
	if err != nil {
		return err
	}
	page, err := render(frame{Title: "edge-sync demo report: agent " + r.Agent, Live: body, Now: r.End,
		Footer: template.HTML(`Written by <code>edge-sync demo --report</code>. The measured figures are the agent's timeline (<code>transport.bandwidth.timeline</code>), a point a second; the true ones are the linksim profiles of the walk.`)})
	if err != nil {
		return err
	}
	_, err = w.Write(page)
	return err
}

type reportView struct {
	R        Report
	OK       bool
	Duration string
	Legend   template.HTML
	Link     []plotView
	Queue    plotView
	Latency  template.HTML
	Steps    []stepRow
	Rows     []outcomeRow
	Savings  []fact
}

type stepRow struct{ Name, Summary, At string }

type outcomeRow struct {
	Priority                    string
	Sent, Delivered, Superseded int
	Avg, Max                    string
}

// latencyChart is a bar per priority: the mean time from put to
// acknowledged, with a tick at the longest.
func latencyChart(ps []PriorityOutcome) template.HTML {
	const rowH, left, width = 26, 96, 960
	var top time.Duration
	for _, p := range ps {
		top = max(top, p.MaxLatency)
	}
	if top <= 0 {
		top = time.Second
	}
	scale := niceCeil(top.Seconds())
	x := func(d time.Duration) float64 { return left + d.Seconds()/scale*float64(width-left-20) }
	h := rowH*len(ps) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" role="img" aria-label="latency per priority" xmlns="http://www.w3.org/2000/svg">`, width, h)
	for i := 0; i <= 4; i++ {
		v := scale * float64(i) / 4
		xx := x(time.Duration(v * float64(time.Second)))
		fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="4" x2="%s" y2="%d"/><text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`,
			f1(xx), f1(xx), h-22, f1(xx), h-8, esc(seconds(v)))
	}
	for i, p := range ps {
		y := 6 + i*rowH
		name := p.Priority.String()
		fmt.Fprintf(&b, `<g data-latency="%s" data-avg-ms="%d" data-max-ms="%d"><text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`,
			esc(name), p.AvgLatency.Milliseconds(), p.MaxLatency.Milliseconds(), left-8, y+14, esc(name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%s" height="%d" fill="%s"><title>%s: mean %s, longest %s</title></rect>`,
			left, y, f1(math.Max(0, x(p.AvgLatency)-left)), rowH-10, priorityColors[p.Priority], esc(name), dur(p.AvgLatency), dur(p.MaxLatency))
		mx := x(p.MaxLatency)
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#1d2330" stroke-width="2"/></g>`, f1(mx), y-2, f1(mx), y+rowH-8)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var reportTmpl = template.Must(template.New("report").Parse(`
<section class="card">
<h2>Verified at the core: {{if .OK}}<span class="ok" data-verified="ok">OK</span>{{else}}<span class="bad" data-verified="failed">FAILED</span>{{end}}</h2>
<p>{{if .OK}}All {{.R.Accepted}} ops the agent accepted are at the core exactly once, or were superseded by a newer version of their key.{{else}}{{len .R.Problems}} problem(s):{{end}}</p>
{{if not .OK}}<ul data-problems>{{range .R.Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .R.Refused}}<p class="note">Puts refused by the agent (not accepted, so not verified): {{.R.Refused}}.</p>{{end}}
<table data-table="outcomes"><tr><th>priority</th><th>sent</th><th>delivered</th><th>superseded</th><th>mean latency</th><th>longest</th></tr>
{{range .Rows}}<tr data-priority="{{.Priority}}"><td>{{.Priority}}</td><td data-field="sent">{{.Sent}}</td><td data-field="delivered">{{.Delivered}}</td><td data-field="superseded">{{.Superseded}}</td><td>{{.Avg}}</td><td>{{.Max}}</td></tr>{{end}}
</table>
<h3>Latency per priority, from put to acknowledged by the core (bar: mean, tick: longest)</h3>
{{.Latency}}
<h3>What it cost</h3>
<div class="facts">{{range .Savings}}<div><span class="k">{{.K}}</span><span data-figure="{{.Attr}}">{{.V}}</span></div>{{end}}</div>
</section>

<section class="card">
<h2>The link walk <span class="reason">{{.Duration}}</span></h2>
<table data-table="steps"><tr><th class="l">from</th><th class="l">link</th><th class="l">as linksim shapes it</th></tr>
{{range .Steps}}<tr data-step-row="{{.Name}}"><td class="l">{{.At}}</td><td class="l">{{.Name}}</td><td class="l">{{.Summary}}</td></tr>{{end}}
</table>
{{.Legend}}
{{range .Link}}<div class="plotbox"><div class="note">{{.Title}}</div>{{.SVG}}{{.Legend}}</div>{{end}}
<h3>Queue per priority</h3>
{{.Queue.SVG}}{{.Queue.Legend}}
</section>
`))
