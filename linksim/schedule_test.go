package linksim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestParseSchedule(t *testing.T) {
	steps, err := ParseSchedule(strings.NewReader(`
# a satellite day
30s satellite-geo
  1m30s   intermittent   # comment after a step

5s very-bad
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		d    time.Duration
		name string
	}{{30 * time.Second, "satellite-geo"}, {90 * time.Second, "intermittent"}, {5 * time.Second, "very-bad"}}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d", len(steps), len(want))
	}
	for i, w := range want {
		if steps[i].Duration != w.d || steps[i].Profile.Name != w.name {
			t.Errorf("step %d = %v %s, want %v %s", i, steps[i].Duration, steps[i].Profile.Name, w.d, w.name)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		line int // 0: not about one line
	}{
		{"", 0},
		{"# only a comment\n", 0},
		{"30s fiber\nfiber 30s\n", 2},
		{"30s\n", 1},
		{"30s fiber extra\n", 1},
		{"\n\n-5s fiber\n", 3},
		{"10s fiber\n10s moon-link\n", 2},
	} {
		_, err := ParseSchedule(strings.NewReader(c.in))
		if !errors.Is(err, ErrBadSchedule) {
			t.Errorf("ParseSchedule(%q) = %v, want ErrBadSchedule", c.in, err)
			continue
		}
		var se *ScheduleError
		switch {
		case c.line == 0 && errors.As(err, &se):
			t.Errorf("ParseSchedule(%q) blames line %d, want no line", c.in, se.Line)
		case c.line > 0 && !errors.As(err, &se):
			t.Errorf("ParseSchedule(%q) = %v, want a *ScheduleError for line %d", c.in, err, c.line)
		case c.line > 0 && se.Line != c.line:
			t.Errorf("ParseSchedule(%q) blames line %d, want %d", c.in, se.Line, c.line)
		}
	}
	if _, err := ParseSchedule(strings.NewReader("10s moon-link\n")); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile in a schedule: %v, want it to wrap ErrUnknownProfile", err)
	}
}

// TestScheduleStepsLand checks that each step's profile takes effect within
// 50 ms of its time, by watching the one-way delay change.
func TestScheduleStepsLand(t *testing.T) {
	retryTiming(t, func(errorf func(string, ...any)) { checkSteps(t, errorf) })
}

func checkSteps(t *testing.T, errorf func(string, ...any)) {
	mk := func(name string, d time.Duration) Profile {
		// Reorder lets packets after a step to a shorter delay overtake,
		// so the step shows at its true time.
		return Profile{Name: name, Up: Direction{Delay: d, Reorder: true}}
	}
	const step = 300 * time.Millisecond
	steps := []Step{{step, mk("short", 10*time.Millisecond)}, {step, mk("long", 110*time.Millisecond)}, {step, mk("short", 10*time.Millisecond)}}
	rx := newReceiver(t, false)
	r := newTestRelay(t, rx.addr(), Unshaped())
	tx := dial(t, r.Addr().String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := since()
	done := make(chan error, 1)
	go func() { done <- r.RunSchedule(ctx, steps) }()
	sendEvery(t, tx, 50, 450, 2*time.Millisecond)
	if err := testutil.Returned(t, done, 3*time.Second, "RunSchedule to return after a 900 ms schedule"); err != nil {
		t.Fatalf("RunSchedule: %v", err)
	}
	if got := r.Profile().Name; got != "short" {
		errorf("after the schedule the profile is %q, want the last step's", got)
	}
	got := rx.waitFor(t, 2*time.Second, "all packets", func(a []arrival) bool { return len(a) == 450 })
	// A step shows as the first packet (by send time) that starts a run of
	// five on the new delay; a single packet delayed by scheduling noise
	// does not fake one.
	isLong := func(a arrival) bool { return a.delay() > 60*time.Millisecond }
	byTime := sortBySent(got)
	runFrom := func(i int, long bool) bool {
		for k := i; k < i+5; k++ {
			if k >= len(byTime) || isLong(byTime[k]) != long {
				return false
			}
		}
		return true
	}
	var toLong, toShort time.Duration = -1, -1
	for i, a := range byTime {
		switch {
		case toLong < 0 && runFrom(i, true):
			toLong = a.sent - start
		case toLong >= 0 && toShort < 0 && runFrom(i, false):
			toShort = a.sent - start
		}
	}
	t.Logf("steps seen at %v and %v (want %v and %v)", toLong, toShort, step, 2*step)
	for _, c := range []struct {
		seen, want time.Duration
	}{{toLong, step}, {toShort, 2 * step}} {
		if d := c.seen - c.want; c.seen < 0 || d < -50*time.Millisecond || d > 50*time.Millisecond {
			errorf("step due at %v took effect at %v (want within 50 ms)", c.want, c.seen)
		}
	}
}

func sortBySent(a []arrival) []arrival {
	out := append([]arrival(nil), a...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].seq < out[j-1].seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestRunScheduleErrors(t *testing.T) {
	r := newTestRelay(t, "127.0.0.1:9", Unshaped())
	if err := r.RunSchedule(context.Background(), nil); !errors.Is(err, ErrBadSchedule) {
		t.Errorf("empty schedule: %v, want ErrBadSchedule", err)
	}
	if err := r.RunSchedule(context.Background(), []Step{{0, Fiber()}}); !errors.Is(err, ErrBadSchedule) {
		t.Errorf("zero duration: %v, want ErrBadSchedule", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.RunSchedule(ctx, []Step{{time.Hour, Fiber()}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled schedule: %v, want context.Canceled", err)
	}
	if got := r.Profile().Name; got != "fiber" {
		t.Errorf("the first step was not applied before cancel: %q", got)
	}
}
