package testutil

import (
	"bytes"
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Logger returns a logger named name that writes into tb's log at debug
// level when the tests run with -v (trace level, with the link monitor's
// probes and trains, when EDGESYNC_TEST_TRACE is set), and discards
// otherwise.
func Logger(tb testing.TB, name string) hclog.Logger {
	if testing.Verbose() {
		lvl := hclog.Debug
		if os.Getenv("EDGESYNC_TEST_TRACE") != "" {
			lvl = hclog.Trace
		}
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: lvl, Output: tbWriter{tb}})
	}
	return hclog.NewNullLogger()
}

// tbWriter writes each log line with tb.Log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
