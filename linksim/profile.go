package linksim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Direction is the behaviour of one direction of a link.
//
// Rates count UDP payload bytes (no IP/UDP header overhead). A zero RateBps
// means no serialisation limit; a zero queue limit means the default of
// DefaultQueueDelay worth of bytes at RateBps.
type Direction struct {
	// RateBps is the bottleneck rate in bits per second; 0 is unlimited.
	RateBps int64
	// Delay is the one-way propagation delay added after serialisation.
	Delay time.Duration
	// Jitter adds a uniform random extra delay in [0, Jitter] per packet.
	Jitter time.Duration
	// Reorder lets jittered packets overtake each other; by default a
	// packet is never delivered before one that arrived earlier.
	Reorder bool
	// LossRate is the probability, in [0, 1], that a packet is lost on the
	// wire (after it has used its serialisation time).
	LossRate float64
	// Bursty, when non-nil, adds Gilbert–Elliott bursty loss.
	Bursty *GilbertElliott
	// QueueBytes caps the bytes waiting for serialisation; 0 derives it
	// from QueueDelay.
	QueueBytes int64
	// QueueDelay caps the time a packet may wait for serialisation; 0 is
	// DefaultQueueDelay when QueueBytes is also 0.
	QueueDelay time.Duration
}

// GilbertElliott is the two-state bursty loss model: the chain moves
// Good→Bad with probability P and Bad→Good with probability R once per
// packet, and loses a packet with LossGood or LossBad in each state.
type GilbertElliott struct {
	P, R              float64
	LossGood, LossBad float64
}

// MeanLoss returns the stationary loss probability of the model.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return g.LossGood
	}
	bad := g.P / (g.P + g.R)
	return (1-bad)*g.LossGood + bad*g.LossBad
}

// Outages describes a link that is alternately up and down. While down,
// every packet, including those already in flight, is dropped.
type Outages struct {
	// Up and Down are the window lengths: fixed when Random is false, the
	// means of exponential distributions when Random is true.
	Up, Down time.Duration
	// Random draws window lengths from exponential distributions
	// (mahimahi mm-onoff style) instead of a fixed schedule.
	Random bool
}

// Handover models a LEO constellation changing satellite every Every:
// the base one-way delay steps to a new value drawn from
// [DelayMin, DelayMax], the first SpikeFor of each period adds an extra
// delay drawn from [SpikeMin, SpikeMax], and the first BurstFor of each
// period loses packets with probability BurstLoss.
type Handover struct {
	Every              time.Duration
	DelayMin, DelayMax time.Duration
	SpikeMin, SpikeMax time.Duration
	SpikeFor           time.Duration
	BurstLoss          float64
	BurstFor           time.Duration
}

// Profile is a complete link description; it is a plain value that tests
// can copy and change (use Clone before changing the pointed-to Bursty,
// Outages or Handover of a shared profile). A link copies what it needs
// when the profile is applied.
type Profile struct {
	// Name identifies the profile in stats and logs.
	Name string
	// Up is the client→target direction (for Wrap: writes).
	Up Direction
	// Down is the target→client direction (for Wrap: reads).
	Down Direction
	// Outages, when non-nil, takes the whole link down in windows.
	Outages *Outages
	// Handover, when non-nil, adds LEO-style path changes; its Delay range
	// replaces each direction's Delay.
	Handover *Handover
	// Summary is a one-line description with the figures and their source.
	Summary string
}

// Clone returns a deep copy of p, so changing the copy's Bursty, Outages or
// Handover leaves p alone.
func (p Profile) Clone() Profile {
	for _, d := range []*Direction{&p.Up, &p.Down} {
		if d.Bursty != nil {
			g := *d.Bursty
			d.Bursty = &g
		}
	}
	if p.Outages != nil {
		o := *p.Outages
		p.Outages = &o
	}
	if p.Handover != nil {
		h := *p.Handover
		p.Handover = &h
	}
	return p
}

// DefaultQueueDelay is the queue limit used when a Direction sets neither
// QueueBytes nor QueueDelay.
const DefaultQueueDelay = 100 * time.Millisecond

// minQueueBytes keeps a queue able to hold a few full-size packets even on
// a very slow link.
const minQueueBytes = 4 * 1500

// queueLimit returns the tail-drop limit in bytes of data waiting for
// serialisation; 0 means no limit (only when RateBps is 0).
func (d Direction) queueLimit() int64 {
	if d.RateBps <= 0 {
		return 0
	}
	delay := d.QueueDelay
	if d.QueueBytes == 0 && delay == 0 {
		delay = DefaultQueueDelay
	}
	bytes := d.QueueBytes
	if delay > 0 {
		b := int64(float64(d.RateBps) / 8 * delay.Seconds())
		if bytes == 0 || b < bytes {
			bytes = b
		}
	}
	return max(bytes, minQueueBytes)
}

// Validate reports the first field of p that is out of range.
func (p Profile) Validate() error {
	for _, d := range []struct {
		name string
		d    Direction
	}{{"Up", p.Up}, {"Down", p.Down}} {
		switch {
		case d.d.RateBps < 0:
			return fmt.Errorf("%w: %s.RateBps %d is negative", ErrBadProfile, d.name, d.d.RateBps)
		case d.d.Delay < 0 || d.d.Jitter < 0 || d.d.QueueDelay < 0:
			return fmt.Errorf("%w: %s has a negative duration", ErrBadProfile, d.name)
		case d.d.QueueBytes < 0:
			return fmt.Errorf("%w: %s.QueueBytes %d is negative", ErrBadProfile, d.name, d.d.QueueBytes)
		case !prob(d.d.LossRate):
			return fmt.Errorf("%w: %s.LossRate %v is not in [0, 1]", ErrBadProfile, d.name, d.d.LossRate)
		}
		if g := d.d.Bursty; g != nil && !(prob(g.P) && prob(g.R) && prob(g.LossGood) && prob(g.LossBad)) {
			return fmt.Errorf("%w: %s.Bursty has a probability outside [0, 1]", ErrBadProfile, d.name)
		}
	}
	if o := p.Outages; o != nil && (o.Up <= 0 || o.Down <= 0) {
		return fmt.Errorf("%w: Outages.Up and Outages.Down must be positive", ErrBadProfile)
	}
	if h := p.Handover; h != nil {
		switch {
		case h.Every <= 0:
			return fmt.Errorf("%w: Handover.Every must be positive", ErrBadProfile)
		case h.DelayMin < 0 || h.DelayMax < h.DelayMin:
			return fmt.Errorf("%w: Handover delay range [%v, %v] is empty or negative", ErrBadProfile, h.DelayMin, h.DelayMax)
		case h.SpikeMin < 0 || h.SpikeMax < h.SpikeMin:
			return fmt.Errorf("%w: Handover spike range [%v, %v] is empty or negative", ErrBadProfile, h.SpikeMin, h.SpikeMax)
		case !prob(h.BurstLoss):
			return fmt.Errorf("%w: Handover.BurstLoss %v is not in [0, 1]", ErrBadProfile, h.BurstLoss)
		}
	}
	return nil
}

func prob(f float64) bool { return f >= 0 && f <= 1 }

const (
	kbit = 1000
	mbit = 1000 * kbit
)

// Fiber is an FTTH line: 100 Mbit/s each way, 10 ms RTT, no loss
// (FCC Measuring Broadband America: fiber ≥ 100 Mbit/s, ~10 ms, < 0.4 % loss).
func Fiber() Profile {
	d := Direction{RateBps: 100 * mbit, Delay: 5 * time.Millisecond, QueueDelay: 20 * time.Millisecond}
	return Profile{Name: "fiber", Up: d, Down: d,
		Summary: "100/100 Mbit/s, 10 ms RTT, 0 % loss (FCC MBA)"}
}

// Broadband is a cable line: 100 Mbit/s down, 10 up, 20 ms RTT, 0.1 % loss
// (FCC Measuring Broadband America: cable ≥ 100 Mbit/s, < 0.4 % loss).
func Broadband() Profile {
	return Profile{Name: "broadband",
		Down:    Direction{RateBps: 100 * mbit, Delay: 10 * time.Millisecond, LossRate: 0.001, QueueDelay: 50 * time.Millisecond},
		Up:      Direction{RateBps: 10 * mbit, Delay: 10 * time.Millisecond, LossRate: 0.001, QueueDelay: 100 * time.Millisecond},
		Summary: "100/10 Mbit/s, 20 ms RTT, 0.1 % loss (FCC MBA, cable)"}
}

// DSL is a rural ADSL line: 2 Mbit/s down, 256 kbit/s up, 40 ms RTT, 0.5 %
// loss at peak hour, deep buffers (FCC Measuring Broadband America: DSL
// peak-hour loss 0.4–1 %).
func DSL() Profile {
	return Profile{Name: "dsl",
		Down:    Direction{RateBps: 2 * mbit, Delay: 20 * time.Millisecond, LossRate: 0.005, QueueDelay: 300 * time.Millisecond},
		Up:      Direction{RateBps: 256 * kbit, Delay: 20 * time.Millisecond, LossRate: 0.005, QueueDelay: 500 * time.Millisecond},
		Summary: "2/0.256 Mbit/s, 40 ms RTT, 0.5 % loss (FCC MBA, rural DSL)"}
}

// LTE is a mobile line: 50 Mbit/s down, 10 up, 110 ms RTT with 10 ms of
// jitter each way (pion vnet presets; Winstein et al., NSDI 2013).
func LTE() Profile {
	return Profile{Name: "lte",
		Down:    Direction{RateBps: 50 * mbit, Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, QueueDelay: 150 * time.Millisecond},
		Up:      Direction{RateBps: 10 * mbit, Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, QueueDelay: 150 * time.Millisecond},
		Summary: "50/10 Mbit/s, 100-120 ms RTT, 10 ms jitter (pion vnet; Winstein NSDI 2013)"}
}

// SatelliteGEO is a geostationary satellite link: 20 Mbit/s down, 2 up,
// 600 ms RTT, low jitter, no loss (FAU QUIC-over-satellite emulation study,
// arXiv 2202.08228).
func SatelliteGEO() Profile {
	return Profile{Name: "satellite-geo",
		Down:    Direction{RateBps: 20 * mbit, Delay: 300 * time.Millisecond, Jitter: time.Millisecond, QueueDelay: 200 * time.Millisecond},
		Up:      Direction{RateBps: 2 * mbit, Delay: 300 * time.Millisecond, Jitter: time.Millisecond, QueueDelay: 200 * time.Millisecond},
		Summary: "20/2 Mbit/s, 600 ms RTT, 0 % loss (arXiv 2202.08228)"}
}

// SatelliteGEOLossy is SatelliteGEO with 1 % random loss each way (the
// lossy variant of arXiv 2202.08228).
func SatelliteGEOLossy() Profile {
	p := SatelliteGEO()
	p.Name = "satellite-geo-lossy"
	p.Up.LossRate, p.Down.LossRate = 0.01, 0.01
	p.Summary = "20/2 Mbit/s, 600 ms RTT, 1 % loss (arXiv 2202.08228)"
	return p
}

// SatelliteLEO is a Starlink-like link: 100 Mbit/s down, 10 up, 25–60 ms
// RTT that steps every 15 s at a satellite handover, with a 30–50 ms RTT
// spike and a 50 % loss burst for the first 100 ms of each period and 1 %
// background loss (APNIC blog 2024-05; Kassem et al., IMC 2022).
func SatelliteLEO() Profile {
	return Profile{Name: "satellite-leo",
		Down: Direction{RateBps: 100 * mbit, Jitter: 2 * time.Millisecond, LossRate: 0.01, QueueDelay: 50 * time.Millisecond},
		Up:   Direction{RateBps: 10 * mbit, Jitter: 2 * time.Millisecond, LossRate: 0.01, QueueDelay: 50 * time.Millisecond},
		Handover: &Handover{Every: 15 * time.Second,
			DelayMin: 12500 * time.Microsecond, DelayMax: 30 * time.Millisecond,
			SpikeMin: 15 * time.Millisecond, SpikeMax: 25 * time.Millisecond, SpikeFor: 300 * time.Millisecond,
			BurstLoss: 0.5, BurstFor: 100 * time.Millisecond},
		Summary: "100/10 Mbit/s, 25-60 ms RTT, handover every 15 s (+30-50 ms, loss burst), 1 % loss (APNIC 2024; IMC 2022)"}
}

// Intermittent is a 10 Mbit/s, 50 ms RTT link that is up for exponentially
// distributed windows of mean 30 s and down for windows of mean 10 s
// (mahimahi mm-onoff; DTN contacts, RFC 9171). Set Outages.Random to false
// for a fixed schedule.
func Intermittent() Profile {
	d := Direction{RateBps: 10 * mbit, Delay: 25 * time.Millisecond, QueueDelay: 100 * time.Millisecond}
	return Profile{Name: "intermittent", Up: d, Down: d,
		Outages: &Outages{Up: 30 * time.Second, Down: 10 * time.Second, Random: true},
		Summary: "10/10 Mbit/s, 50 ms RTT, up ~30 s / down ~10 s, exponential (mahimahi mm-onoff; RFC 9171)"}
}

// VeryBad is a 1 Mbit/s link with 500 ms RTT and 10 % loss each way (pion
// vnet "VeryBadNetwork").
func VeryBad() Profile {
	d := Direction{RateBps: 1 * mbit, Delay: 250 * time.Millisecond, LossRate: 0.10, QueueDelay: 300 * time.Millisecond}
	return Profile{Name: "very-bad", Up: d, Down: d,
		Summary: "1/1 Mbit/s, 500 ms RTT, 10 % loss (pion vnet VeryBadNetwork)"}
}

// Outage is a link that is down: every packet is dropped, for schedules
// such as "20s outage". It is fiber when it comes back, but a schedule
// replaces it by its next step.
func Outage() Profile {
	p := Fiber()
	p.Name, p.Summary = "outage", "link down: every packet dropped"
	p.Outages = &Outages{Up: time.Nanosecond, Down: 100_000 * time.Hour}
	return p
}

// Unshaped forwards packets as fast as the relay can, with no delay or loss.
func Unshaped() Profile {
	return Profile{Name: "none", Summary: "no shaping: forward as fast as possible"}
}

// Profiles returns the built-in profiles, sorted by name.
func Profiles() []Profile {
	ps := []Profile{Fiber(), Broadband(), DSL(), LTE(), SatelliteGEO(), SatelliteGEOLossy(),
		SatelliteLEO(), Intermittent(), VeryBad(), Outage(), Unshaped()}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// ProfileByName returns the built-in profile called name.
func ProfileByName(name string) (Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Profile{}, fmt.Errorf("%w: %q (want one of %s)", ErrUnknownProfile, name, strings.Join(names, ", "))
}
