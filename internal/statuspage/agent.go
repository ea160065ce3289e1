package statuspage

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/units"
)

// The agent's page: per endpoint, the link's last hour (bandwidth, RTT
// and loss with the class behind them and mode switches marked), the
// queue per priority, the transfers in flight, what is held back as
// summaries, the data budget where there is one, and the last connection
// error. It reads the agent's Go API only: Status (transport.bandwidth.status),
// Stats (transport.stats), Timeline (transport.bandwidth.timeline) and
// Config, so it shows nothing the control API and /metrics do not.

// Agent returns the agent's metrics listener handler: the status page at
// / and the Prometheus metrics at /metrics.
func Agent(a *agent.Agent) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.MetricsHandler())
	footer := template.HTML(`The same figures: <code>/metrics</code>, <code>edge-sync ctl transport.bandwidth.status</code>, <code>edge-sync ctl transport.bandwidth.timeline</code>, <code>edge-sync ctl transport.stats</code>. The agent keeps the last hour, a point a second.`)
	mux.Handle("/", live(fmt.Sprintf("edge-sync agent %q", a.Name()), footer, func(now time.Time) (template.HTML, error) {
		return agentLive(a, now)
	}))
	return mux
}

// endpointView is one endpoint's part of the page.
type endpointView struct {
	St        agent.LinkStatus
	Stats     agent.EndpointStats
	Since     string
	Figures   []fact
	Legend    template.HTML
	Link      []plotView
	Queue     plotView
	Backlog   []backlogRow
	Transfers []transferRow
	Held      []fact
	Budget    []fact // the data budget's figures; none until the agent has a budget
	LastError *agent.ConnError
	ErrorAge  string
	Address   addressView
	// DownFor is how long the core has not answered, "" while it does.
	DownFor string
	// ClassSwatch is the class's colour, as in the bands; Zone the time
	// zone of the times shown.
	ClassSwatch template.HTML
	Zone        string
}

type fact struct{ K, V, Attr string }

type plotView struct {
	Title  string
	SVG    template.HTML
	Legend template.HTML
}

type backlogRow struct {
	Priority string
	Ops      int
	Bytes    string
	Color    template.HTML
}

type transferRow struct {
	ID, Key, Priority, Sent, Size, Age string
	Value, Max                         int64
	Percent                            string
}

func agentLive(a *agent.Agent, now time.Time) (template.HTML, error) {
	modes := map[edgesync.LinkClass]edgesync.SyncMode{}
	for c, p := range a.Config().Profiles {
		modes[c] = p.Params.Mode
	}
	stats := map[string]agent.EndpointStats{}
	for _, es := range a.Stats() {
		stats[es.Endpoint] = es
	}
	var views []endpointView
	for _, name := range a.Endpoints() {
		st, err := a.Status(name)
		if err != nil {
			continue // removed meanwhile, or the agent is stopping
		}
		tl, err := a.Timeline(name, time.Hour)
		if err != nil {
			continue
		}
		views = append(views, endpointPart(st, stats[name], tl, modes, now))
	}
	return agentPart(a.Name(), views)
}

// agentPart renders the live part of the named agent's page.
func agentPart(name string, views []endpointView) (template.HTML, error) {
	return execute(agentTmpl, struct {
		Name      string
		Endpoints []endpointView
	}{name, views})
}

func endpointPart(st agent.LinkStatus, es agent.EndpointStats, tl agent.Timeline, modes map[edgesync.LinkClass]edgesync.SyncMode, now time.Time) endpointView {
	v := endpointView{St: st, Stats: es, Since: ago(now, st.Since), Legend: classLegend(modes), LastError: st.LastError,
		ClassSwatch: template.HTML(swatch(classColor(st.Class), false, false)), Zone: zone(now)}
	m := st.Figures
	v.Figures = []fact{
		{"bandwidth", bitRate(m.BandwidthBps), "bandwidth"},
		{"RTT", dur(m.RTT), "rtt"},
		{"jitter", dur(m.Jitter), "jitter"},
		{"loss", fmt.Sprintf("%.1f %%", m.Loss*100), "loss"},
		{"samples", fmt.Sprint(st.Samples), "samples"},
		{"drain ETA", drainETA(st.DrainETA), "drain-eta"},
		{"probes sent", units.FormatBytes(st.ProbeBytes), "probe-bytes"},
	}
	if st.LastError != nil {
		v.ErrorAge = ago(now, st.LastError.At)
	}
	v.Address = addressPart(st, now)
	if st.DownSince != nil {
		v.DownFor = now.Sub(*st.DownSince).Round(time.Second).String()
	}
	from, to := window(tl, now)
	v.Link = linkPlots(tl, from, to, nil)
	v.Queue = queuePlot(tl, from, to)
	for _, p := range edgesync.Priorities() {
		b := st.Backlog[p.String()]
		v.Backlog = append(v.Backlog, backlogRow{Priority: p.String(), Ops: b.Ops, Bytes: units.FormatBytes(b.Bytes),
			Color: template.HTML(swatch(priorityColors[p], true, false))})
	}
	for _, t := range st.Transfers {
		pct := 0.0
		if t.Size > 0 {
			pct = 100 * float64(t.Sent) / float64(t.Size)
		}
		v.Transfers = append(v.Transfers, transferRow{ID: t.ID.String(), Key: t.Key, Priority: t.Priority.String(),
			Sent: units.FormatBytes(t.Sent), Size: units.FormatBytes(t.Size), Age: ago(now, t.Started),
			Value: t.Sent, Max: max(t.Size, 1), Percent: fmt.Sprintf("%.0f %%", pct)})
	}
	v.Held = []fact{
		{"summaries sent", fmt.Sprint(es.Summaries), "summaries"},
		{"payload held back meanwhile", units.FormatBytes(es.SummaryBytes), "summary-held-bytes"},
		{"summary only now", yesNo(st.Params.SummaryOnly), "summary-only"},
		{"held as summary now", heldNow(st.Summaries, false), "summary-held-now"},
		{"backfilling now", heldNow(st.Summaries, true), "backfilling-now"},
		{"backfilled so far", fmt.Sprintf("%d ops, %s", es.Backfilled, units.FormatBytes(es.BackfilledBytes)), "backfilled"},
	}
	v.Budget = budgetFacts(st, now)
	return v
}

// budgetFacts are the figures of the endpoint's data budget
// (docs/budget.md), in their own part of the page; with no budget, the
// part is left out.
func budgetFacts(st agent.LinkStatus, now time.Time) []fact {
	b := st.Budget
	if b == nil {
		return nil
	}
	pct := func(n int64) string { return fmt.Sprintf("%.1f %%", float64(n)*100/float64(max(1, b.Allowance))) }
	out := []fact{
		{"allowance", fmt.Sprintf("%s per %s (reserve %s)", units.FormatBytes(b.Allowance), b.Period, units.FormatBytes(b.Reserve)), "budget-allowance"},
		{"spent", fmt.Sprintf("%s (%s)", units.FormatBytes(b.Spent), pct(b.Spent)), "budget-spent"},
		{"left", units.FormatBytes(b.Left), "budget-left"},
		{"forecast", fmt.Sprintf("%s (%s) by the period's end", units.FormatBytes(b.Forecast), pct(b.Forecast)), "budget-forecast"},
		{"renews", b.PeriodEnd.In(now.Location()).Format(time.DateTime), "budget-renews"},
	}
	var held []string
	for _, h := range b.Held {
		if h.Ops == 0 {
			continue
		}
		x := fmt.Sprintf("%s: %d ops, %s", h.Priority, h.Ops, units.FormatBytes(h.Bytes))
		if h.Since != nil {
			x += " since " + ago(now, *h.Since)
		}
		held = append(held, x)
	}
	if len(held) == 0 {
		held = []string{"nothing"}
	}
	return append(out, fact{"held back", strings.Join(held, "; "), "budget-held"})
}

// window is the stretch of time the plots show: from the timeline's
// first point to now, at least ten seconds and at most an hour.
func window(tl agent.Timeline, now time.Time) (from, to time.Time) {
	from = now.Add(-10 * time.Second)
	if len(tl.Points) > 0 && tl.Points[0].At.Before(from) {
		from = tl.Points[0].At
	}
	if hour := now.Add(-time.Hour); from.Before(hour) {
		from = hour
	}
	return from, now
}

// linkPlots are the three link charts of a timeline: bandwidth, RTT and
// loss over the class bands with mode switches marked. truth, when not
// nil, adds the true link's series beside the measured ones (the demo's
// report) and its step markers.
func linkPlots(tl agent.Timeline, from, to time.Time, truth *trueLink) []plotView {
	bands := classBands(tl, to)
	markers := modeSwitches(tl)
	bw := Series{Name: "bandwidth", Label: "measured bandwidth (median)", Color: measuredColor}
	rtt := Series{Name: "rtt", Label: "measured RTT (median)", Color: measuredColor}
	loss := Series{Name: "loss", Label: "measured loss (mean)", Color: measuredColor}
	for _, p := range tl.Points {
		gap := !p.Connected && p.BandwidthBps == 0
		bw.Points = append(bw.Points, Point{T: p.At, V: p.BandwidthBps, Gap: gap})
		rtt.Points = append(rtt.Points, Point{T: p.At, V: p.RTT.Seconds(), Gap: gap || p.RTT == 0})
		loss.Points = append(loss.Points, Point{T: p.At, V: p.Loss * 100})
	}
	bwS, rttS, lossS := []Series{bw}, []Series{rtt}, []Series{loss}
	if truth != nil {
		bwS = append(bwS, truth.bandwidth)
		rttS = append(rttS, truth.rtt)
		lossS = append(lossS, truth.loss)
		markers = append(markers, truth.steps...)
	}
	plots := []*Plot{
		{Title: "Bandwidth (bit/s, log scale)", Scale: Log, Format: bitRate, LogRange: [2]float64{1e6, 1e8}, Series: bwS},
		{Title: "Round-trip time (log scale)", Scale: Log, Format: seconds, LogRange: [2]float64{1e-3, 1}, Series: rttS},
		{Title: "Loss (%)", Scale: Linear, Format: percent, Min: 5, Series: lossS, Height: 120},
	}
	out := make([]plotView, len(plots))
	for i, p := range plots {
		p.From, p.To, p.Bands, p.Markers = from, to, bands, markers
		out[i] = plotView{Title: p.Title, SVG: p.SVG(), Legend: seriesLegend(p.Series)}
	}
	return out
}

// queuePlot is the ops waiting per priority over time.
func queuePlot(tl agent.Timeline, from, to time.Time) plotView {
	var ss []Series
	for i, pr := range tl.Priorities {
		s := Series{Name: "queue-" + pr.String(), Label: pr.String(), Color: priorityColors[pr]}
		for _, p := range tl.Points {
			s.Points = append(s.Points, Point{T: p.At, V: float64(p.QueueOps[i])})
		}
		ss = append(ss, s)
	}
	p := &Plot{Title: "Ops waiting in the outbox, by priority", Scale: Linear, Format: count, Min: 4,
		From: from, To: to, Series: ss, Bands: classBands(tl, to), Markers: modeSwitches(tl), Height: 170}
	return plotView{Title: p.Title, SVG: p.SVG(), Legend: seriesLegend(ss)}
}

// classBands turns the timeline's classes into runs; the last runs to end.
func classBands(tl agent.Timeline, end time.Time) []Band {
	var out []Band
	for i, p := range tl.Points {
		if i > 0 && p.Class == tl.Points[i-1].Class {
			out[len(out)-1].To = p.At
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].To = p.At
		}
		out = append(out, Band{From: p.At, To: p.At, Class: p.Class.String(), Color: classColor(p.Class)})
	}
	if len(out) > 0 && end.After(out[len(out)-1].To) {
		out[len(out)-1].To = end
	}
	return out
}

// modeSwitches marks each point whose sync mode differs from the one
// before.
func modeSwitches(tl agent.Timeline) []Marker {
	var out []Marker
	for i := 1; i < len(tl.Points); i++ {
		if p := tl.Points[i]; p.Mode != tl.Points[i-1].Mode {
			out = append(out, Marker{At: p.At, Attr: "data-mode-switch", Value: p.Mode.String()})
		}
	}
	return out
}

var agentTmpl = template.Must(template.New("agent").Parse(`
{{range .Endpoints}}
<section class="card endpoint" data-endpoint="{{.St.Endpoint}}">
<h2>Endpoint {{.St.Endpoint}} <span class="reason">→ {{.St.Address}}</span></h2>
<div class="facts">
<div><span class="k">connected</span><span data-connected="{{.St.Connected}}" class="{{if .St.Connected}}ok{{else}}bad{{end}}">{{if .St.Connected}}yes{{else}}no{{end}}</span></div>
<div><span class="k">link</span><span data-state="{{.St.State}}" class="{{if eq .St.State "connected"}}ok{{else}}bad{{end}}" title="{{.St.StateReason}}">{{.St.State}}{{if .DownFor}}, no answer for {{.DownFor}}{{end}}</span></div>
<div><span class="k">class</span><span class="badge">{{.ClassSwatch}}<span data-current-class="{{.St.Class}}">{{.St.Class}}</span></span> <span class="reason">since {{.Since}}{{if ne .St.Pin "auto"}}, pinned ({{.St.Pin}}){{end}}</span></div>
<div><span class="k">mode</span><b data-current-mode="{{.St.Params.Mode}}">{{.St.Params.Mode}}</b></div>
</div>
<div class="reason" data-reason>{{.St.Reason}}</div>
{{template "address" .Address}}
<div class="facts">{{range .Figures}}<div><span class="k">{{.K}}</span><span data-figure="{{.Attr}}">{{.V}}</span></div>{{end}}</div>
{{if .LastError}}<div class="error" data-last-error><b>Last connection error</b> ({{.ErrorAge}}{{if .St.Connected}}; connected again since{{end}}): {{.LastError.Error}}</div>{{end}}
{{if .St.Damage}}<div class="error" data-damage>{{.St.Damage}}</div>{{end}}

<h3>The link, last hour <span class="reason">(times in {{.Zone}})</span></h3>
{{.Legend}}
{{range .Link}}<div class="plotbox"><div class="note">{{.Title}}</div>{{.SVG}}{{.Legend}}</div>{{end}}

<h3>Queue per priority</h3>
{{.Queue.SVG}}{{.Queue.Legend}}
<table data-table="backlog"><tr><th>priority</th><th>ops</th><th>bytes</th></tr>
{{range .Backlog}}<tr data-priority="{{.Priority}}"><td>{{.Color}}{{.Priority}}</td><td data-field="ops">{{.Ops}}</td><td data-field="bytes">{{.Bytes}}</td></tr>{{end}}
</table>

<h3>Transfers in flight</h3>
{{if .Transfers}}<table data-table="transfers"><tr><th>key</th><th class="l">priority</th><th>sent</th><th>of</th><th class="l">progress</th><th>for</th></tr>
{{range .Transfers}}<tr data-transfer="{{.ID}}"><td>{{.Key}}</td><td class="l">{{.Priority}}</td><td data-field="sent">{{.Sent}}</td><td>{{.Size}}</td><td class="l"><progress value="{{.Value}}" max="{{.Max}}"></progress> {{.Percent}}</td><td>{{.Age}}</td></tr>{{end}}
</table>{{else}}<p class="note" data-transfers-none>nothing in flight</p>{{end}}

<h3>Held as summaries</h3>
<div class="facts">{{range .Held}}<div><span class="k">{{.K}}</span><span data-figure="{{.Attr}}">{{.V}}</span></div>{{end}}</div>
{{if .Budget}}<h3>Data budget</h3>
<div class="facts" data-budget>{{range .Budget}}<div><span class="k">{{.K}}</span><span data-figure="{{.Attr}}">{{.V}}</span></div>{{end}}</div>{{end}}
</section>
{{else}}<section class="card"><p>The agent has no endpoint.</p></section>{{end}}
`))

// Formats of figures, by internal/units where they are sizes and rates.

func bitRate(v float64) string {
	if v <= 0 {
		return "not measured"
	}
	return units.FormatBitRate(v)
}

func seconds(v float64) string {
	if v == 0 {
		return "0"
	}
	return dur(time.Duration(v * float64(time.Second)))
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func percent(v float64) string { return fmt.Sprintf("%g %%", v) }

func count(v float64) string { return fmt.Sprintf("%g", v) }

func drainETA(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return d.Round(time.Second).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ago says how long before now t was, e.g. "12:03:04 (5m10s ago)".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmt.Sprintf("%s (%s ago)", clock(t), now.Sub(t).Round(time.Second))
}

// zone names the time zone the pages print times in.
func zone(now time.Time) string {
	name, _ := now.Local().Zone()
	return name
}

// heldNow sums what is held as summary (or, with backfilling, being sent
// in full after its summary) over the priorities: "3 ops, 1.2 MiB".
func heldNow(sums map[string]agent.SummaryStatus, backfilling bool) string {
	var ops int
	var bytes int64
	for _, s := range sums {
		b := s.Held
		if backfilling {
			b = s.Backfilling
		}
		ops += b.Ops
		bytes += b.Bytes
	}
	return fmt.Sprintf("%d ops, %s", ops, units.FormatBytes(bytes))
}
