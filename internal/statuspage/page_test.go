package statuspage

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestAgentHandlerServesReadsOnly: the metrics listener's handler serves
// the page (whole, or its live part), /metrics, and nothing else; it
// refuses anything but GET and HEAD; its Content-Security-Policy admits
// exactly the page's own style sheet and script.
func TestAgentHandlerServesReadsOnly(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	srv := httptest.NewServer(Agent(newAgent(t, p, c.Addr.String())))
	t.Cleanup(srv.Close)
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b)
	}
	res, page := get("GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(page, `data-endpoint="core"`) {
		t.Fatalf("GET /: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), page)
	}
	policy := res.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"style", "script"} {
		body := between(t, page, "<"+tag+">", "</"+tag+">")
		h := sha256.Sum256([]byte(body))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"; !strings.Contains(policy, tag+"-src "+want) {
			t.Errorf("the policy %q does not admit the page's %s (%s)", policy, tag, want)
		}
	}
	if res, part := get("GET", "/?part=live"); res.StatusCode != 200 || strings.Contains(part, "<html") || !strings.Contains(part, `data-current-class=`) {
		t.Errorf("GET /?part=live: %d, want the live part alone:\n%s", res.StatusCode, part)
	}
	if res, m := get("GET", "/metrics"); res.StatusCode != 200 || !strings.Contains(m, "edge_sync_link_class") {
		t.Errorf("GET /metrics: %d\n%.200s", res.StatusCode, m)
	}
	if res, _ := get("POST", "/"); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q; want 405 with GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}
	if res, _ := get("GET", "/admin"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin: %d, want 404", res.StatusCode)
	}
}

// renderEndpoint renders the live part of agent site-1's page with one
// endpoint whose status is st, at now.
func renderEndpoint(t *testing.T, st agent.LinkStatus, now time.Time) string {
	t.Helper()
	v := endpointPart(st, agent.EndpointStats{}, agent.Timeline{Priorities: edgesync.Priorities()}, nil, now)
	html, err := agentPart("site-1", []endpointView{v})
	if err != nil {
		t.Fatal(err)
	}
	return string(html)
}

// TestPageEscapesWhatProducersWrite: an op key and an error text are
// shown as text, never as markup.
func TestPageEscapesWhatProducersWrite(t *testing.T) {
	evil := `<img src=x onerror=alert(1)>`
	now := time.Now()
	st := agent.LinkStatus{Endpoint: "core", Backlog: map[string]agent.Backlog{},
		Transfers: []agent.Transfer{{Key: evil, Size: 10, Sent: 5, Started: now}},
		LastError: &agent.ConnError{At: now, Error: evil}}
	html := renderEndpoint(t, st, now)
	if strings.Contains(html, "<img") || strings.Count(html, "&lt;img src=x onerror=alert(1)&gt;") != 2 {
		t.Fatalf("markup from an op key or an error reached the page:\n%s", html)
	}
}

// TestPlotDrawsGapsAndEscapes: a log plot breaks its line at values it
// cannot draw and at gaps, and a series' name is text.
func TestPlotDrawsGapsAndEscapes(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := &Plot{Title: `a "plot"`, Scale: Log, Format: bitRate, From: at(0), To: at(10),
		Series: []Series{{Name: `x"><script>`, Label: "x", Color: "#000", Points: []Point{
			{T: at(1), V: 1e6}, {T: at(2), V: 2e6}, {T: at(3), V: 0}, {T: at(4), V: 3e6}, {T: at(5), V: 4e6, Gap: true}, {T: at(6), V: 5e6},
		}}},
		Bands:   []Band{{From: at(0), To: at(10), Class: "satellite", Color: "#00f"}},
		Markers: []Marker{{At: at(5), Attr: "data-mode-switch", Value: "delta+zstd"}},
	}
	svg := string(p.SVG())
	if strings.Contains(svg, "<script>") {
		t.Fatalf("a series name became markup:\n%s", svg)
	}
	d := between(t, svg, ` d="`, `"`)
	if n := strings.Count(d, "M"); n != 3 || strings.Count(svg, `data-points="4"`) != 1 {
		t.Errorf("path %q: %d lines, want 3 (broken at the zero and at the gap), 4 points", d, n)
	}
	for _, want := range []string{`data-class="satellite"`, `data-mode-switch="delta+zstd"`, ">1 Mbit/s<", ">10 Mbit/s<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %s:\n%s", want, svg)
		}
	}
}

// TestThinKeepsExtremes: a series with more points than the plot has
// room for keeps, per bucket, its lowest and highest point.
func TestThinKeepsExtremes(t *testing.T) {
	t0 := time.Unix(0, 0)
	var pts []Point
	for i := range 3600 {
		v := 1.0
		switch i {
		case 1000:
			v = 100 // a spike
		case 2000:
			v = -5 // a dip
		}
		pts = append(pts, Point{T: t0.Add(time.Duration(i) * time.Second), V: v})
	}
	out := thin(pts, t0, time.Hour, 400)
	if len(out) > 800 {
		t.Fatalf("%d points left for 400 buckets", len(out))
	}
	var spike, dip bool
	for i, p := range out {
		spike = spike || p.V == 100
		dip = dip || p.V == -5
		if i > 0 && p.T.Before(out[i-1].T) {
			t.Fatalf("points out of time order at %d", i)
		}
	}
	if !spike || !dip {
		t.Fatalf("thinned series lost the spike (%v) or the dip (%v)", spike, dip)
	}
}

// between returns the text of s between the first from and the next to.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		t.Fatalf("no %q in:\n%.500s", from, s)
	}
	in, _, ok := strings.Cut(rest, to)
	if !ok {
		t.Fatalf("no %q after %q", to, from)
	}
	return in
}
