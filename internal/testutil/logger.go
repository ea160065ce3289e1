package testutil

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Logger returns a logger named name that writes into tb's log at debug
// level when the tests run with -v, and discards otherwise.
func Logger(tb testing.TB, name string) hclog.Logger {
	if testing.Verbose() {
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: tbWriter{tb}})
	}
	return hclog.NewNullLogger()
}

// tbWriter writes each log line with tb.Log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
