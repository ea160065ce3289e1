package linksim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Stats is a snapshot of a link's counters.
type Stats struct {
	// Profile is the name of the profile in force.
	Profile string
	// Up is client→target (for Wrap: writes); Down is target→client.
	Up, Down DirStats
}

// link is the pair of shaped directions that Conn and Relay share.
type link struct {
	dyn      *dynamics
	up, down *shaper

	mu      sync.Mutex
	profile Profile
}

func newLink(p Profile, seed uint64, upSink, downSink func(*packet)) (*link, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if seed == 0 {
		seed = rand.Uint64() | 1
	}
	l := &link{dyn: newDynamics(seed)}
	l.up = newShaper(l.dyn, seed+1, upSink)
	l.down = newShaper(l.dyn, seed+2, downSink)
	l.apply(p)
	return l, nil
}

func (l *link) apply(p Profile) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.profile = p
	l.up.setDirection(p.Up)
	l.down.setDirection(p.Down)
	l.dyn.reset(p, time.Now())
}

// setProfile validates p and applies it to packets arriving from now on.
func (l *link) setProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("set profile %q: %w", p.Name, err)
	}
	l.apply(p)
	return nil
}

func (l *link) currentProfile() Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.profile
}

func (l *link) stats() Stats {
	return Stats{Profile: l.currentProfile().Name, Up: l.up.stats(), Down: l.down.stats()}
}

// runSchedule applies each step's profile for its duration. Step times are
// measured from the start of the schedule, so they do not drift.
func (l *link) runSchedule(ctx context.Context, steps []Step) error {
	if err := validateSteps(steps); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	at := time.Duration(0)
	for _, st := range steps {
		l.apply(st.Profile)
		at += st.Duration
		timer.Reset(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
	}
	return nil
}

func (l *link) close() {
	l.up.close()
	l.down.close()
}
