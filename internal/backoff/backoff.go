// Package backoff computes capped exponential retry delays with jitter, the
// way every reconnect loop in edge-sync waits.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields delays Min, 2·Min, 4·Min … up to Max, each spread by
// ±Jitter (a fraction, default 0.2) so that a fleet of agents that lost the
// same core do not return in lock step. The zero value is not usable; use
// New. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
	attempt  int
	rnd      func() float64
}

// New returns a Backoff between min and max with 20 % jitter.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Jitter: 0.2, rnd: rand.Float64}
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.attempt++
	if b.Jitter > 0 {
		f := 1 + b.Jitter*(2*b.rnd()-1)
		d = time.Duration(float64(d) * f)
	}
	return d
}

// Attempts returns how many delays Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait waits the delay Next hands out, or until ctx ends.
func (b *Backoff) Wait(ctx context.Context) {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
