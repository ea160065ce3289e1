package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// This file is `ctl transport.config`: show the configuration, or change
// a link class's sync parameters.

var levelNames = map[string]int{"off": 0, "fastest": 1, "default": 2, "better": 3, "best": 4}

func configAction(fs *pflag.FlagSet) ctlAction {
	class := fs.String("class", "", "link class to change: "+joinOr(classNames()))
	mode := fs.String("mode", "", "sync mode: "+joinOr(modeNames()))
	compression := fs.String("compression", "", "on or off")
	level := fs.String("level", "", "compression level: fastest, default, better, best")
	chunk := fs.String("chunk-size", "", "largest chunk, "+units.FormatBytes(linkmon.MinChunkBytes)+" to "+units.FormatBytes(linkmon.MaxChunkBytes)+", e.g. 256KiB")
	interval := fs.String("interval", "", "batching interval for ordinary data, e.g. 10m (0 = best effort)")
	concurrency := fs.Int("concurrency", 0, "streams kept busy")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		var req control.ConfigRequest
		changes := *mode != "" || *compression != "" || *level != "" || *chunk != "" || *interval != "" || *concurrency != 0
		if changes && *class == "" {
			return usagef(x.name, "--class names the link class whose parameters change")
		}
		if *class != "" {
			if _, err := edgesync.ParseLinkClass(*class); err != nil {
				return usagef(x.name, "--class: %v", err)
			}
			if !changes {
				return usagef(x.name, "--class %s: give at least one of --mode, --compression, --level, --chunk-size, --interval, --concurrency", *class)
			}
			o, err := parseOverride(*mode, *compression, *level, *chunk, *interval, *concurrency)
			if err != nil {
				return usagef(x.name, "%v", err)
			}
			req = control.ConfigRequest{Class: *class, Profile: &o}
		}
		var rc agent.RuntimeConfig
		return x.call(ctx, control.CmdConfig, req, &rc, func(w io.Writer) { printConfig(w, rc) })
	}
}

func parseOverride(mode, compression, level, chunk, interval string, concurrency int) (linkmon.Override, error) {
	var o linkmon.Override
	if mode != "" {
		m, err := edgesync.ParseSyncMode(mode)
		if err != nil {
			return o, fmt.Errorf("--mode: %w", err)
		}
		o.Mode = m
	}
	switch compression {
	case "":
	case "on", "off":
		on := compression == "on"
		o.Compression = &on
	default:
		return o, fmt.Errorf("--compression %q: want on or off", compression)
	}
	if level != "" {
		l, ok := levelNames[level]
		if !ok {
			return o, fmt.Errorf("--level %q: want off, fastest, default, better or best", level)
		}
		o.Level = &l
	}
	if chunk != "" {
		n, err := units.ParseSize(chunk)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("--chunk-size: want a size like 64KiB, got %q", chunk)
		}
		// The range in the user's units: "32" is 32 bytes, not 32 KiB.
		if n < linkmon.MinChunkBytes || n > linkmon.MaxChunkBytes {
			return o, fmt.Errorf("--chunk-size %s is %s: want %s to %s (e.g. 32KiB)", chunk, units.FormatBytes(n),
				units.FormatBytes(linkmon.MinChunkBytes), units.FormatBytes(linkmon.MaxChunkBytes))
		}
		o.ChunkSize = int(n)
	}
	if interval != "" {
		d, err := units.ParseDuration(interval)
		if err != nil || d < 0 {
			return o, fmt.Errorf("--interval: want a duration like 10m, got %q", interval)
		}
		o.Interval = &d
	}
	if concurrency < 0 {
		return o, fmt.Errorf("--concurrency must be positive, got %d", concurrency)
	}
	o.Concurrency = concurrency
	return o, nil
}

// joinOr is "a, b or c".
func joinOr(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	out := words[0]
	for _, w := range words[1 : len(words)-1] {
		out += ", " + w
	}
	return out + " or " + words[len(words)-1]
}
