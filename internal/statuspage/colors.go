package statuspage

import (
	"html/template"
	"strings"

	edgesync "github.com/edge-sync/edge-sync"
)

// The colours of the classes (bands and badges) and of the priorities
// (queue lines), the same on every page.

var classColors = map[edgesync.LinkClass]string{
	edgesync.Fiber:        "#2e7d32",
	edgesync.Broadband:    "#8bc34a",
	edgesync.Mobile:       "#f9a825",
	edgesync.Satellite:    "#1e88e5",
	edgesync.Intermittent: "#e53935",
	edgesync.Unknown:      "#9e9e9e",
}

var priorityColors = [edgesync.NumPriorities]string{
	edgesync.Critical:   "#c62828",
	edgesync.Schema:     "#6a1b9a",
	edgesync.High:       "#ef6c00",
	edgesync.Normal:     "#1565c0",
	edgesync.Analytics:  "#00897b",
	edgesync.Background: "#757575",
}

const (
	measuredColor = "#1d2330"
	trueColor     = "#d81b60"
)

func classColor(c edgesync.LinkClass) string {
	if col, ok := classColors[c]; ok {
		return col
	}
	return classColors[edgesync.Unknown]
}

// classLegend explains the band colours: each class with the sync mode the
// agent uses on it (modes may be nil).
func classLegend(modes map[edgesync.LinkClass]edgesync.SyncMode) template.HTML {
	var b strings.Builder
	b.WriteString(`<div class="legend" data-legend="classes"><span>background: the link class the agent judged</span>`)
	for _, c := range edgesync.LinkClasses() {
		b.WriteString(`<span data-legend-class="` + esc(c.String()) + `">` + swatch(classColor(c), false, false) + `` + esc(c.String()))
		if m, ok := modes[c]; ok && m.Valid() {
			b.WriteString(" → " + esc(m.String()))
		}
		b.WriteString(`</span>`)
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

// seriesLegend names the lines of a plot.
func seriesLegend(ss []Series) template.HTML {
	var b strings.Builder
	b.WriteString(`<div class="legend">`)
	for _, s := range ss {
		b.WriteString(`<span data-legend="` + esc(s.Name) + `">` + swatch(s.Color, true, s.Dashed) + esc(s.Label) + `</span>`)
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

// swatch is a legend's sample of a colour: a box for a band, a line for a
// series. SVG, as the pages allow no style attributes.
func swatch(color string, line, dashed bool) string {
	if !line {
		return `<svg class="sw" viewBox="0 0 24 12" aria-hidden="true"><rect width="24" height="12" fill="` + esc(color) + `" opacity=".45" stroke="#00000033"/></svg>`
	}
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="5 3"`
	}
	return `<svg class="sw" viewBox="0 0 24 12" aria-hidden="true"><line x1="0" y1="6" x2="24" y2="6" stroke="` + esc(color) + `" stroke-width="3"` + dash + `/></svg>`
}
