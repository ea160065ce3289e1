package natstest

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect connects a plain NATS client to the servers at urls (one
// server's, or a cluster's), a test's own view beside the code under test:
// streams of its own, or what the code wrote. It reconnects, to another
// node of a cluster too, for as long as the test runs; tb's cleanup closes
// it.
func Connect(tb testing.TB, urls ...string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
