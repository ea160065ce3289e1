package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/edge-sync/edge-sync/internal/units"
)

// This file is ctl's --watch: run a reading command again every interval
// until interrupted, like watch(1). On a terminal each answer replaces the
// last; piped, each is printed as one block after the other (one JSON
// document per line with --json), so that a log or a script can follow.

// watchType is the pflag type of --watch, which normalizeArgs knows to
// join with an interval that follows it ("--watch 5s").
const watchType = "interval"

// defaultWatch is the interval of a bare --watch.
const defaultWatch = 2 * time.Second

// minWatch bounds how often --watch asks the agent.
const minWatch = 100 * time.Millisecond

// watchFlag is --watch's value: seconds ("5", "0.5") or a duration ("5s").
type watchFlag time.Duration

func (w *watchFlag) String() string {
	if *w == 0 {
		return ""
	}
	return units.FormatDuration(time.Duration(*w))
}

func (w *watchFlag) Set(s string) error {
	d, err := units.ParseDuration(s)
	if f, ferr := strconv.ParseFloat(s, 64); ferr == nil {
		d, err = time.Duration(f*float64(time.Second)), nil
	}
	if err != nil {
		return fmt.Errorf("want an interval like 2s or 5 (seconds), got %q", s)
	}
	if d < minWatch {
		return fmt.Errorf("want an interval of at least %s, got %q", units.FormatDuration(minWatch), s)
	}
	*w = watchFlag(d)
	return nil
}

func (w *watchFlag) Type() string { return watchType }

// watchVar defines --watch (-w) on fs.
func watchVar(fs *pflag.FlagSet, every *time.Duration) {
	f := fs.VarPF((*watchFlag)(every), "watch", "w", "repeat every INTERVAL (default "+units.FormatDuration(defaultWatch)+") until Ctrl-C")
	f.NoOptDefVal = units.FormatDuration(defaultWatch)
}

// watch runs act every interval until ctx ends, then returns nil: Ctrl-C
// is how a watch ends. A usage error on the first run ends it at once; an
// error of the agent (or none there) is shown in the block and the watch
// goes on, as the agent may come back.
func watch(ctx context.Context, x *ctlRun, every time.Duration, act ctlAction) error {
	out := x.env.Stdout
	tty := isTerminal(out)
	var buf bytes.Buffer
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; ; n++ {
		buf.Reset()
		run := *x
		run.env.Stdout = &buf
		err := act(ctx, &run)
		if ctx.Err() != nil {
			return nil
		}
		if n == 0 && errors.As(err, new(*UsageError)) {
			return err
		}
		if err := writeBlock(out, &buf, x, every, tty, err); err != nil {
			return err // the reader went away (a closed pipe)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// writeBlock writes one answer: on a terminal over the last one, with a
// header line; piped, after it, with the header as a separator (JSON
// answers go out one per line, bare).
func writeBlock(w io.Writer, answer *bytes.Buffer, x *ctlRun, every time.Duration, tty bool, err error) error {
	var b bytes.Buffer
	if tty {
		b.WriteString("\x1b[H\x1b[2J") // cursor home, clear screen
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		if x.json {
			fmt.Fprintf(&b, "{\"error\":%q,\"at\":%q}\n", msg, time.Now().Format(time.RFC3339))
		} else {
			fmt.Fprintf(&b, "%s  every %s  %s\n\nerror: %s\n", "edge-sync "+x.name, units.FormatDuration(every), time.Now().Format("15:04:05"), msg)
		}
	} else if x.json {
		// One document a line, for a reader that splits on lines.
		if json.Compact(&b, answer.Bytes()) != nil {
			b.Write(bytes.TrimRight(answer.Bytes(), "\n"))
		}
		b.WriteByte('\n')
	} else {
		fmt.Fprintf(&b, "%s  every %s  %s\n\n", "edge-sync "+x.name, units.FormatDuration(every), time.Now().Format("15:04:05"))
		b.Write(answer.Bytes())
	}
	if !tty && !x.json {
		b.WriteByte('\n')
	}
	_, werr := w.Write(b.Bytes())
	return werr
}

// isTerminal reports whether w is a terminal, where --watch redraws.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
