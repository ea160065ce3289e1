package statuspage

import (
	"fmt"
	"html/template"
	"time"

	"github.com/edge-sync/edge-sync/agent"
)

// An endpoint's core address on the agent's page: the one in use, its
// place in the endpoint's addresses, and, with several of them, since
// when it is in use, why the endpoint moved to it (failover or
// fail-back; docs/design.md, "Several core addresses") and how often it
// moved. The same as transport.bandwidth.status's address_choice and
// /metrics' edge_sync_address_index and edge_sync_address_moves_total.

type addressView struct {
	Address  string
	Index    int // in Addresses; -1 if not found
	Of       int // len(Addresses)
	Ordinal  string
	Since    string
	Reason   string
	Moves    int64
	Failover bool // in use is not the first, preferred address
}

func addressPart(st agent.LinkStatus, now time.Time) addressView {
	c := st.AddressChoice
	v := addressView{Address: st.Address, Index: -1, Of: len(st.Addresses), Since: ago(now, c.Since), Reason: c.Reason, Moves: c.Moves}
	for i, a := range st.Addresses {
		if a == st.Address {
			v.Index = i
			break
		}
	}
	if v.Index >= 0 {
		v.Ordinal = fmt.Sprintf("%d of %d", v.Index+1, v.Of)
	}
	v.Failover = v.Index > 0
	return v
}

// The "address" part of agentTmpl.
var _ = template.Must(agentTmpl.New("address").Parse(`<div class="facts" data-address-choice>
<div><span class="k">core address</span><span data-address="{{.Address}}" data-address-index="{{.Index}}">{{.Address}}</span>{{if gt .Of 1}} <span class="reason">({{.Ordinal}}{{if .Failover}}, not the preferred one{{end}})</span>{{end}}</div>
{{if gt .Of 1}}<div><span class="k">in use since</span><span data-address-since>{{.Since}}</span></div>
<div><span class="k">moves</span><span data-address-moves>{{.Moves}}</span></div>{{end}}
</div>
{{if gt .Of 1}}<div class="reason" data-address-reason>{{.Reason}}</div>{{end}}`))
