// Package logging builds the hclog logger that every edge-sync component
// takes a named sub-logger from.
package logging

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New returns a root logger named name that writes to w at level ("trace",
// "debug", "info", "warn", "error" or "off") in format "text" or "json".
func New(name string, w io.Writer, level, format string) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(strings.ToLower(level))
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("log level %q: want trace, debug, info, warn, error or off", level)
	}
	if format != "text" && format != "json" && format != "" {
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           lvl,
		Output:          w,
		JSONFormat:      format == "json",
		IncludeLocation: false,
		TimeFormat:      "2006-01-02T15:04:05.000Z0700",
	}), nil
}
