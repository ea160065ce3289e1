package statuspage

import (
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/units"
)

// The core's page: the agents it has heard from (connected, last seen, ops
// and bytes received, lag) and its own counters, from Server.Agents and
// Server.Stats, which /metrics reads too.

// Core returns the core's metrics listener handler: the status page at /
// and metrics at /metrics (the handler s.MetricsHandler gives).
func Core(s *core.Server, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	footer := template.HTML(`The same figures: <code>/metrics</code> (<code>edge_sync_core_agent_*</code> per agent). Lag is the time since the agent's last op was acknowledged.`)
	mux.Handle("/", live(fmt.Sprintf("edge-sync core %q", s.Name()), footer, func(now time.Time) (template.HTML, error) {
		return coreLive(s, now)
	}))
	return mux
}

type agentRow struct {
	Name                            string
	Connected                       bool
	LastSeen, Ops, Bytes, Lag, Seen string
}

func coreLive(s *core.Server, now time.Time) (template.HTML, error) {
	st := s.Stats()
	var rows []agentRow
	connected := 0
	for _, a := range s.Agents() {
		r := agentRow{Name: a.Agent, Connected: a.Connections > 0, LastSeen: ago(now, a.LastSeen),
			Ops: fmt.Sprint(a.Ops), Bytes: units.FormatBytes(a.Bytes), Lag: "no op yet"}
		if !a.LastOp.IsZero() {
			r.Lag = now.Sub(a.LastOp).Round(time.Second).String()
		}
		if r.Connected {
			connected++
		}
		rows = append(rows, r)
	}
	figures := []fact{
		{"live connections", fmt.Sprint(st.Connections), "connections"},
		{"accepted", fmt.Sprint(st.Accepted), "accepted"},
		{"refused", fmt.Sprint(st.Refused), "refused"},
		{"ops applied", fmt.Sprint(st.OpsApplied), "ops-applied"},
		{"de-duplicated", fmt.Sprint(st.OpsDuplicate), "ops-duplicate"},
		{"refused ops (NACK)", fmt.Sprint(st.OpsNacked), "ops-nacked"},
		{"summaries", fmt.Sprint(st.Summaries), "summaries"},
		{"received (encoded)", units.FormatBytes(st.BytesReceived), "bytes-received"},
		{"stored (plain)", units.FormatBytes(st.BytesApplied), "bytes-applied"},
		{"ops on the data lane", fmt.Sprint(st.LaneOps), "lane-ops"},
		{"pings answered", fmt.Sprint(st.Pings), "pings"},
	}
	return execute(coreTmpl, struct {
		Agents    []agentRow
		Connected int
		Figures   []fact
	}{rows, connected, figures})
}

var coreTmpl = template.Must(template.New("core").Parse(`
<section class="card">
<h2>Agents <span class="reason">{{.Connected}} connected of {{len .Agents}} heard from since the core started</span></h2>
{{if .Agents}}<table data-table="agents">
<tr><th>agent</th><th class="l">connected</th><th class="l">last seen</th><th>ops received</th><th>bytes received</th><th>lag (since the last op)</th></tr>
{{range .Agents}}<tr data-agent="{{.Name}}"><td>{{.Name}}</td><td class="l {{if .Connected}}ok{{else}}bad{{end}}" data-field="connected" data-connected="{{.Connected}}">{{if .Connected}}yes{{else}}no{{end}}</td><td class="l" data-field="last-seen">{{.LastSeen}}</td><td data-field="ops">{{.Ops}}</td><td data-field="bytes">{{.Bytes}}</td><td data-field="lag">{{.Lag}}</td></tr>
{{end}}</table>{{else}}<p class="note" data-agents-none>no agent has connected since the core started</p>{{end}}
</section>
<section class="card">
<h2>The core</h2>
<div class="facts">{{range .Figures}}<div><span class="k">{{.K}}</span><span data-figure="{{.Attr}}">{{.V}}</span></div>{{end}}</div>
</section>
`))
