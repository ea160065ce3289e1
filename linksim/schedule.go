package linksim

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// Step is one entry of a schedule: Profile is in force for Duration.
type Step struct {
	Duration time.Duration
	Profile  Profile
}

func validateSteps(steps []Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("%w: no steps", ErrBadSchedule)
	}
	for i, st := range steps {
		if st.Duration <= 0 {
			return fmt.Errorf("%w: step %d: duration %v is not positive", ErrBadSchedule, i+1, st.Duration)
		}
		if err := st.Profile.Validate(); err != nil {
			return fmt.Errorf("%w: step %d: %w", ErrBadSchedule, i+1, err)
		}
	}
	return nil
}

// ScheduleError is a mistake on one line of a schedule file. It wraps
// ErrBadSchedule and, for unknown names, ErrUnknownProfile.
type ScheduleError struct {
	Line int
	Err  error
}

func (e *ScheduleError) Error() string { return fmt.Sprintf("schedule line %d: %v", e.Line, e.Err) }

// Unwrap returns the underlying errors.
func (e *ScheduleError) Unwrap() []error { return []error{ErrBadSchedule, e.Err} }

// maxScheduleLines bounds how much of a schedule file is read.
const maxScheduleLines = 100_000

// ParseSchedule reads a schedule: one "DURATION PROFILE" step per line
// (for example "30s satellite-geo"), with blank lines and text after '#'
// ignored. PROFILE is a built-in profile name; DURATION uses
// time.ParseDuration syntax. Errors name the line.
func ParseSchedule(r io.Reader) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		if line > maxScheduleLines {
			return nil, &ScheduleError{line, fmt.Errorf("more than %d lines", maxScheduleLines)}
		}
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, &ScheduleError{line, fmt.Errorf("want \"DURATION PROFILE\", got %q", strings.TrimSpace(text))}
		}
		d, err := time.ParseDuration(fields[0])
		if err != nil {
			return nil, &ScheduleError{line, fmt.Errorf("duration %q: %w", fields[0], err)}
		}
		if d <= 0 {
			return nil, &ScheduleError{line, fmt.Errorf("duration %v is not positive", d)}
		}
		p, err := ProfileByName(fields[1])
		if err != nil {
			return nil, &ScheduleError{line, err}
		}
		steps = append(steps, Step{Duration: d, Profile: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read schedule: %w", err)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("%w: no steps", ErrBadSchedule)
	}
	return steps, nil
}
