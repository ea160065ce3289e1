package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A plot is an inline SVG of series over time, rendered here in Go: the
// class as coloured bands behind, markers (mode switches, link steps) as
// vertical lines, axes with units. Every element a test or a reader may
// look for carries a data- attribute: data-series on a line, data-class
// on a band, data-mode-switch or data-step on a marker.

// Scale is how values map to a plot's height.
type Scale uint8

const (
	// Linear runs from 0 to a rounded maximum.
	Linear Scale = iota
	// Log runs over whole decades; values ≤ 0 are not drawn.
	Log
)

// Point is one value at one time; Gap breaks the line before it.
type Point struct {
	T   time.Time
	V   float64
	Gap bool
}

// Series is one line of a plot.
type Series struct {
	Name   string // its data-series attribute
	Label  string // its legend entry
	Color  string
	Dashed bool
	Points []Point // by time
}

// Band is a stretch of time shaded behind the lines: a link class.
type Band struct {
	From, To time.Time
	Class    string // its data-class attribute
	Color    string
}

// Marker is a vertical line at a moment: a mode switch or a link step.
type Marker struct {
	At    time.Time
	Attr  string // "data-mode-switch" or "data-step"
	Value string // the attribute's value, and the label
}

// Plot is one chart.
type Plot struct {
	Title string // above the chart, with the unit
	Scale Scale
	// Format renders a tick value with its unit.
	Format func(float64) string
	// Min is the least top of a linear axis, or the least range of a
	// log axis (lo, hi) when there is no data.
	Min      float64
	LogRange [2]float64
	From, To time.Time
	Series   []Series
	Bands    []Band
	Markers  []Marker
	Height   int
}

// The plot's geometry in SVG units (the SVG scales to its box).
const (
	plotWidth   = 960
	marginLeft  = 86
	marginRight = 14
	marginTop   = 16
	marginBot   = 26
	// labelCharWidth is the width of a character of a marker's label
	// (10px sans-serif), a little generous.
	labelCharWidth = 6
)

// SVG renders the plot.
func (p *Plot) SVG() template.HTML {
	h := p.Height
	if h <= 0 {
		h = 150
	}
	x0, x1 := float64(marginLeft), float64(plotWidth-marginRight)
	y0, y1 := float64(marginTop), float64(h-marginBot) // top, bottom
	span := p.To.Sub(p.From)
	if span <= 0 {
		span = time.Second
	}
	xOf := func(t time.Time) float64 {
		f := float64(t.Sub(p.From)) / float64(span)
		return x0 + math.Max(0, math.Min(1, f))*(x1-x0)
	}
	lo, hi := p.yRange()
	yOf := func(v float64) float64 {
		var f float64
		if p.Scale == Log {
			f = (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		} else {
			f = (v - lo) / (hi - lo)
		}
		return y1 - math.Max(0, math.Min(1, f))*(y1-y0)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, plotWidth, h, esc(p.Title))
	for _, bd := range p.Bands {
		bx0, bx1 := xOf(bd.From), xOf(bd.To)
		if bx1-bx0 < 0.5 {
			bx1 = bx0 + 0.5
		}
		fmt.Fprintf(&b, `<rect class="band" data-class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s–%s</title></rect>`,
			esc(bd.Class), f1(bx0), f1(y0), f1(bx1-bx0), f1(y1-y0), esc(bd.Color), esc(bd.Class), clock(bd.From), clock(bd.To))
	}
	// Axes and grid.
	for _, v := range p.yTicks(lo, hi) {
		y := yOf(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, f1(x0), f1(y), f1(x1), f1(y))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, f1(x0-6), f1(y+4), esc(p.Format(v)))
	}
	for _, t := range timeTicks(p.From, p.To) {
		x := xOf(t)
		fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, f1(x), f1(y0), f1(x), f1(y1))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, f1(x), f1(y1+16), clock(t))
	}
	fmt.Fprintf(&b, `<rect class="frame" x="%s" y="%s" width="%s" height="%s"/>`, f1(x0), f1(y0), f1(x1-x0), f1(y1-y0))
	// Mode switches are labelled above the plot, link steps inside its
	// top edge. A label that would overlap the one before on its row is
	// left out; the line and its tooltip stay.
	markers := slices.Clone(p.Markers)
	slices.SortStableFunc(markers, func(a, b Marker) int { return a.At.Compare(b.At) })
	labelEnd := map[bool]float64{false: math.Inf(-1), true: math.Inf(-1)}
	for _, m := range markers {
		x := xOf(m.At)
		step := m.Attr == "data-step"
		label := ""
		if x+3 >= labelEnd[step]+4 {
			y := y0 - 4
			if step {
				y = y0 + 12
			}
			label = fmt.Sprintf(`<text x="%s" y="%s">%s</text>`, f1(x+3), f1(y), esc(m.Value))
			labelEnd[step] = x + 3 + labelCharWidth*float64(len(m.Value))
		}
		cls := "marker"
		if step {
			cls += " step"
		}
		fmt.Fprintf(&b, `<g class="%s" %s="%s"><line x1="%s" y1="%s" x2="%s" y2="%s"/>%s<title>%s %s</title></g>`,
			cls, m.Attr, esc(m.Value), f1(x), f1(y0), f1(x), f1(y1), label, clock(m.At), esc(m.Value))
	}
	for _, s := range p.Series {
		pts := thin(s.Points, p.From, span, int(x1-x0)/2)
		var d strings.Builder
		n := 0
		pen := false
		for _, pt := range pts {
			if pt.Gap || math.IsNaN(pt.V) || (p.Scale == Log && pt.V <= 0) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s", cmd, f1(xOf(pt.T)), f1(yOf(pt.V)))
			pen = true
			n++
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<path class="series" data-series="%s" data-points="%d" d="%s" stroke="%s"%s><title>%s</title></path>`,
			esc(s.Name), n, d.String(), esc(s.Color), dash, esc(s.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// yRange returns the axis's bottom and top.
func (p *Plot) yRange() (lo, hi float64) {
	if p.Scale == Log {
		lo, hi = math.Inf(1), math.Inf(-1)
		for _, s := range p.Series {
			for _, pt := range s.Points {
				if pt.V > 0 && !pt.Gap {
					lo, hi = math.Min(lo, pt.V), math.Max(hi, pt.V)
				}
			}
		}
		if math.IsInf(lo, 1) {
			lo, hi = p.LogRange[0], p.LogRange[1]
		}
		lo = math.Pow(10, math.Floor(math.Log10(lo)))
		hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if hi/lo < 100 { // two decades at least, for a readable axis
			lo, hi = lo/10, hi*10
		}
		return lo, hi
	}
	top := p.Min
	for _, s := range p.Series {
		for _, pt := range s.Points {
			if !pt.Gap && !math.IsNaN(pt.V) {
				top = math.Max(top, pt.V)
			}
		}
	}
	if top <= 0 {
		top = 1
	}
	return 0, niceCeil(top)
}

// yTicks returns the values that get a grid line and a label.
func (p *Plot) yTicks(lo, hi float64) []float64 {
	var out []float64
	if p.Scale == Log {
		for v := lo; v <= hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := niceCeil(hi / 4)
	for v := 0.0; v <= hi*1.0001; v += step {
		out = append(out, v)
	}
	return out
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*e*1.0000001 {
			return m * e
		}
	}
	return 10 * e
}

// timeTicks returns round moments between from and to, about six.
func timeTicks(from, to time.Time) []time.Time {
	span := to.Sub(from)
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 7 {
			step = s
			break
		}
	}
	var out []time.Time
	for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
		if !t.Before(from) {
			out = append(out, t)
		}
	}
	return out
}

// thin keeps a series drawable: with more points than buckets (about one
// per two pixels), each bucket keeps its lowest and highest point in time
// order, so spikes and dips stay visible. Gaps are kept.
func thin(pts []Point, from time.Time, span time.Duration, buckets int) []Point {
	if len(pts) <= 2*buckets || buckets <= 0 {
		return pts
	}
	out := make([]Point, 0, 2*buckets+8)
	cur := -1
	var lo, hi Point
	flush := func() {
		if cur < 0 {
			return
		}
		if lo.T.After(hi.T) {
			lo, hi = hi, lo
		}
		out = append(out, lo)
		if hi != lo {
			out = append(out, hi)
		}
	}
	for _, p := range pts {
		if p.Gap {
			flush()
			cur = -1
			out = append(out, p)
			continue
		}
		k := int(float64(p.T.Sub(from)) / float64(span) * float64(buckets))
		if k != cur {
			flush()
			cur, lo, hi = k, p, p
			continue
		}
		if p.V < lo.V {
			lo = p
		}
		if p.V > hi.V {
			hi = p
		}
	}
	flush()
	return out
}

// esc escapes text for HTML and SVG, attribute values included.
func esc(s string) string { return template.HTMLEscapeString(s) }

// f1 prints a coordinate with one decimal.
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// clock prints a moment as the page's time of day.
func clock(t time.Time) string { return t.Local().Format("15:04:05") }
