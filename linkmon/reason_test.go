package linkmon

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// A class change was logged as "median 24.8 Mbit/s < 100 Mbit/s" beside
// measurement=300 Mbit/s (found on loopback): the reason judges the median
// of several samples, the measurement is only the last one, and the line
// said neither. The reason must name how many samples its median is of,
// and the last sample must be labelled as such.
func TestClassChangeLineSaysWhichFigureIsWhich(t *testing.T) {
	var logs testutil.Buffer
	at := t0
	m, err := NewMonitor(testConfig(), MonitorOptions{Name: "core",
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}),
		Now:    func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(bw float64) {
		at = at.Add(step)
		m.observe(Measurement{At: at, BandwidthBps: bw, RTT: time.Millisecond, Method: MethodActive})
	}
	for range 9 {
		feed(300e6)
	}
	if c := m.Status().Class; c != edgesync.Fiber {
		t.Fatalf("after 9 samples at 300 Mbit/s: class %v, want fiber", c)
	}
	// Six samples at 24.8 Mbit/s turn the median of 9 (at the 5th) and
	// hold it; a last one at 300 Mbit/s leaves it there and completes the
	// 3 samples of hysteresis.
	for range 6 {
		feed(24.8e6)
	}
	feed(300e6)
	if c := m.Status().Class; c != edgesync.Broadband {
		t.Fatalf("class %v, want broadband\n%s", c, logs.String())
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "link class changed") && strings.Contains(l, "new=broadband") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no class change to broadband logged:\n%s", logs.String())
	}
	if want := `reason="median 24.8 Mbit/s of the last 9 samples < 100 Mbit/s for 3 samples"`; !strings.Contains(line, want) {
		t.Errorf("the class change line does not name the samples its median is of (want %s):\n%s", want, line)
	}
	if !strings.Contains(line, `last_sample="300 Mbit/s `) || strings.Contains(line, "measurement=") {
		t.Errorf("the class change line shows the last sample unlabelled as such:\n%s", line)
	}
}
