package linksim

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestBuiltinProfiles(t *testing.T) {
	ps := Profiles()
	want := []string{"broadband", "dsl", "fiber", "intermittent", "lte", "none", "outage", "satellite-geo",
		"satellite-geo-lossy", "satellite-leo", "very-bad"}
	if len(ps) != len(want) {
		t.Fatalf("Profiles() has %d profiles, want %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.Name != want[i] {
			t.Errorf("Profiles()[%d] = %q, want %q", i, p.Name, want[i])
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.Summary == "" {
			t.Errorf("%s has no summary", p.Name)
		}
		got, err := ProfileByName(p.Name)
		if err != nil || got.Name != p.Name {
			t.Errorf("ProfileByName(%q) = %q, %v", p.Name, got.Name, err)
		}
	}
	geo := SatelliteGEO()
	if rtt := geo.Up.Delay + geo.Down.Delay; rtt != 600*time.Millisecond {
		t.Errorf("satellite-geo RTT %v, want 600 ms", rtt)
	}
	if l := SatelliteGEOLossy().Up.LossRate; l != 0.01 {
		t.Errorf("satellite-geo-lossy loss %v, want 0.01", l)
	}
	if _, err := ProfileByName("carrier-pigeon"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("ProfileByName(unknown) error = %v, want ErrUnknownProfile", err)
	}
}

// TestProfilesAreValues checks that changing a copy leaves the built-in
// alone.
func TestProfilesAreValues(t *testing.T) {
	p := SatelliteLEO()
	p.Handover.Every = time.Second
	p.Down.RateBps = 1
	if q := SatelliteLEO(); q.Handover.Every != 15*time.Second || q.Down.RateBps != 100*mbit {
		t.Errorf("changing a returned profile changed the built-in")
	}
	c := p.Clone()
	c.Handover.Every = time.Minute
	if p.Handover.Every != time.Second {
		t.Errorf("changing a clone's Handover changed the original")
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(p *Profile){
		"negative rate":      func(p *Profile) { p.Up.RateBps = -1 },
		"negative delay":     func(p *Profile) { p.Down.Delay = -time.Millisecond },
		"loss above one":     func(p *Profile) { p.Up.LossRate = 1.5 },
		"ge probability":     func(p *Profile) { p.Down.Bursty = &GilbertElliott{P: 2} },
		"negative queue":     func(p *Profile) { p.Up.QueueBytes = -1 },
		"zero outage window": func(p *Profile) { p.Outages = &Outages{Up: time.Second} },
		"zero handover":      func(p *Profile) { p.Handover = &Handover{} },
		"empty delay range":  func(p *Profile) { p.Handover = &Handover{Every: time.Second, DelayMin: 2, DelayMax: 1} },
	}
	for name, mutate := range cases {
		p := Fiber()
		mutate(&p)
		if err := p.Validate(); !errors.Is(err, ErrBadProfile) {
			t.Errorf("%s: Validate() = %v, want ErrBadProfile", name, err)
		}
	}
}

func TestQueueLimit(t *testing.T) {
	d := Direction{RateBps: 8 * mbit, QueueDelay: 100 * time.Millisecond}
	if got := d.queueLimit(); got != 100_000 {
		t.Errorf("8 Mbit/s × 100 ms = %d bytes, want 100000", got)
	}
	d.QueueBytes = 50_000
	if got := d.queueLimit(); got != 50_000 {
		t.Errorf("smaller of bytes and delay = %d, want 50000", got)
	}
	if got := (Direction{RateBps: 8 * mbit}).queueLimit(); got != 100_000 {
		t.Errorf("default queue = %d, want DefaultQueueDelay worth (100000)", got)
	}
	if got := (Direction{RateBps: 1000, QueueDelay: time.Millisecond}).queueLimit(); got != minQueueBytes {
		t.Errorf("tiny queue = %d, want the floor %d", got, minQueueBytes)
	}
}

// TestGilbertElliott checks the bursty loss model's mean and burst length.
func TestGilbertElliott(t *testing.T) {
	g := GilbertElliott{P: 0.01, R: 0.25, LossGood: 0, LossBad: 1}
	s := &shaper{rng: newDynamics(7).rng}
	d := Direction{Bursty: &g}
	const n = 200_000
	lost, bursts, run := 0, 0, 0
	for range n {
		if s.lost(d, 0) {
			lost++
			run++
			continue
		}
		if run > 0 {
			bursts++
			run = 0
		}
	}
	mean := float64(lost) / n
	meanBurst := float64(lost) / float64(max(bursts, 1))
	t.Logf("loss %.4f (model %.4f), mean burst %.2f (model %.2f)", mean, g.MeanLoss(), meanBurst, 1/g.R)
	if math.Abs(mean-g.MeanLoss())/g.MeanLoss() > 0.15 {
		t.Errorf("mean loss %.4f, want %.4f ± 15%%", mean, g.MeanLoss())
	}
	if math.Abs(meanBurst-1/g.R)/(1/g.R) > 0.15 {
		t.Errorf("mean burst %.2f packets, want %.2f ± 15%%", meanBurst, 1/g.R)
	}
}

func TestOutageWindows(t *testing.T) {
	d := newDynamics(1)
	t0 := time.Unix(1000, 0)
	d.reset(Profile{Outages: &Outages{Up: 3 * time.Second, Down: time.Second}}, t0)
	for _, c := range []struct {
		at   time.Duration
		down bool
	}{{0, false}, {2999 * time.Millisecond, false}, {3 * time.Second, true}, {3999 * time.Millisecond, true},
		{4 * time.Second, false}, {7500 * time.Millisecond, true}, {2*time.Hour + 3500*time.Millisecond, true},
		{2*time.Hour + 4500*time.Millisecond, false}} {
		if got := d.isDown(t0.Add(c.at)); got != c.down {
			t.Errorf("isDown(+%v) = %v, want %v", c.at, got, c.down)
		}
	}
	// Exponential windows: the share of time down approaches Down/(Up+Down).
	d.reset(Profile{Outages: &Outages{Up: 3 * time.Second, Down: time.Second, Random: true}}, t0)
	downs := 0
	const steps = 200_000
	for i := range steps {
		if d.isDown(t0.Add(time.Duration(i) * 100 * time.Millisecond)) {
			downs++
		}
	}
	if share := float64(downs) / steps; math.Abs(share-0.25) > 0.03 {
		t.Errorf("random outages: down %.3f of the time, want 0.25 ± 0.03", share)
	}
}

func TestHandover(t *testing.T) {
	d := newDynamics(3)
	t0 := time.Unix(1000, 0)
	h := *SatelliteLEO().Handover
	d.reset(Profile{Handover: &h}, t0)
	delay0, spike, burst, ok := d.handover(t0.Add(50 * time.Millisecond))
	if !ok || spike != 0 || burst != 0 {
		t.Errorf("at start: spike %v burst %v ok %v; setting a profile is not a handover", spike, burst, ok)
	}
	changed := false
	for k := 1; k <= 20; k++ {
		at := t0.Add(time.Duration(k) * h.Every)
		delay, spike, burst, _ := d.handover(at.Add(50 * time.Millisecond))
		if delay < h.DelayMin || delay > h.DelayMax {
			t.Errorf("period %d: delay %v outside [%v, %v]", k, delay, h.DelayMin, h.DelayMax)
		}
		if spike < h.SpikeMin || spike > h.SpikeMax || burst != h.BurstLoss {
			t.Errorf("period %d start: spike %v burst %v, want spike in [%v, %v] and burst %v", k, spike, burst, h.SpikeMin, h.SpikeMax, h.BurstLoss)
		}
		if delay != delay0 {
			changed = true
		}
		_, spike, burst, _ = d.handover(at.Add(h.SpikeFor + time.Millisecond))
		if spike != 0 || burst != 0 {
			t.Errorf("period %d after the spike: spike %v burst %v, want 0", k, spike, burst)
		}
	}
	if !changed {
		t.Errorf("the base delay never changed over 20 handovers")
	}
}

// TestOutageDropsEverything: the outage profile delivers nothing.
func TestOutageDropsEverything(t *testing.T) {
	d := newDynamics(1)
	now := time.Now()
	d.reset(Outage(), now)
	for _, at := range []time.Duration{time.Millisecond, time.Second, time.Hour} {
		if !d.isDown(now.Add(at)) {
			t.Fatalf("outage profile up at +%v", at)
		}
	}
}
