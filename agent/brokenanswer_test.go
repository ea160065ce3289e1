package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// An op is parked as the core's broken answer (brokenAnswer) only for
// what the core sent, or failed to send, where its answer was due: the
// errors of this agent's own side of the transfer (its delta base, its
// outbox), and a connection or stream that ends without the core's say,
// send the op again.

// TestUnreadableBaseGoesAgainInFull: a delta base whose file on this
// agent's disk lost its end after it was indexed (the base cache reads
// the file when a delta is made) fails the delta's encoding with
// io.ErrUnexpectedEOF. That is no answer of the core's: the base is
// dropped and the op goes again at once, in full, and is stored. Taken
// for the core's broken answer, the op was parked for 10 s (doubling to
// 10 min), logged as a core that breaks the protocol, and the base kept,
// so every attempt failed alike.
func TestUnreadableBaseGoesAgainInFull(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	const key = "state/pump-1"
	modes := make(chan codec.Mode, 8)
	addr, _ := rawCore(t, p, false, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame {
		hs := opHeaders(frames)
		if len(hs) != 1 {
			return nil // a stream the agent gave up before its header
		}
		modes <- codec.Mode(hs[0].Mode)
		return []wire.Frame{&wire.Ack{IDs: []edgesync.OpID{hs[0].ID}}}
	})
	cfg := quietConfig(coretest.AgentConfig(t, p, addr))
	for _, c := range edgesync.LinkClasses() {
		cfg.Profiles[c] = config.Profile{Mode: edgesync.SyncDelta} // whatever the class the RTT gives
	}
	var logs testutil.Buffer
	a := startAgent(t, p, cfg, Options{Logger: teeLogger(t, "agent", &logs)})
	testutil.WaitFor(t, 30*time.Second, "a connection to the raw core", func() bool { return a.Stats()[0].Connected })
	v1, v2 := twoVersions()
	put, next := stateVersions(t, a, key, modes, func() string {
		return fmt.Sprintf("parked %d\n%s", a.Stats()[0].Parked, grepLines(logs.String(), "[ERROR]"))
	})
	put(v1)
	if m := next("version 1"); m.IsDelta() {
		t.Fatalf("version 1 went as %v with no base", m)
	}
	testutil.WaitFor(t, 10*time.Second, "version 1 acknowledged", func() bool { return outboxEmpty(a) })
	// The base of version 1, indexed at its full length, loses its end.
	path := filepath.Join(a.bases.dir, baseFileName("core", key))
	if n, _ := a.bases.usage(); n != int64(len(v1)) {
		t.Fatalf("the base cache holds %d bytes; want version 1's %d (the test's premise)", n, len(v1))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-int64(len(v1))/2); err != nil {
		t.Fatal(err)
	}
	put(v2)
	if m := next("version 2"); m.IsDelta() {
		t.Errorf("version 2 went as %v against a base it cannot read; want it in full", m)
	}
	testutil.WaitFor(t, 10*time.Second, "version 2 acknowledged", func() bool { return outboxEmpty(a) })
	if got := a.Stats()[0].Parked; got != 0 {
		t.Errorf("parked %d; want none: the core refused nothing", got)
	}
	if line := grepLines(logs.String(), "breaks the protocol"); line != "" {
		t.Errorf("the agent logged its own unreadable base as the core's broken answer:\n%s", line)
	}
	if n, k := a.bases.usage(); n != int64(len(v2)) || k != 1 {
		t.Errorf("the base cache holds %d bases of %d bytes; want version 2's alone (%d bytes)", k, n, len(v2))
	}
}

// TestConnectionClosedBeforeAnswerIsNoBrokenAnswer: a core that closes
// the connection while an op waits for its answer (it shuts down or
// restarts) ends the op's stream with the connection's error, not the
// stream's clean end: the op is not parked, and goes again on the next
// connection at once.
func TestConnectionClosedBeforeAnswerIsNoBrokenAnswer(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	var conn atomic.Pointer[quic.Conn]
	addr, streams := rawCoreConns(t, p, false, func(c *quic.Conn) { conn.Store(c) },
		func(_ context.Context, n int64, frames []wire.Frame) []wire.Frame {
			hs := opHeaders(frames)
			if n == 1 {
				// The answer was due: the core goes instead.
				conn.Load().CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "the raw core shuts down")
				return nil
			}
			if len(hs) != 1 {
				return nil
			}
			return []wire.Frame{&wire.Ack{IDs: []edgesync.OpID{hs[0].ID}}}
		})
	var logs testutil.Buffer
	a := rawAgentLog(t, p, addr, 1, teeLogger(t, "agent", &logs))
	testutil.WaitFor(t, 5*time.Second, "the op stored at the next connection (a parked op waits 10 s)", func() bool { return outboxEmpty(a) })
	if streams.Load() < 2 {
		t.Errorf("%d op streams; want the op's first, whose connection the core closed, and another", streams.Load())
	}
	if got := a.Stats()[0].Parked; got != 0 {
		t.Errorf("parked %d; want none: the core refused nothing", got)
	}
	if line := grepLines(logs.String(), "breaks the protocol"); line != "" {
		t.Errorf("the agent logged a closed connection as the core's broken answer:\n%s", line)
	}
}

// TestOwnStreamEndedBeforeAnswerIsNoBrokenAnswer: an agent that closes
// while an op waits for its answer ends the op's stream itself; the read
// of the answer fails with the stream's cancellation, never its clean
// end: the op is neither parked nor logged as the core's broken answer.
func TestOwnStreamEndedBeforeAnswerIsNoBrokenAnswer(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	waiting := make(chan struct{}, 1)
	addr, _ := rawCore(t, p, false, func(ctx context.Context, _ int64, _ []wire.Frame) []wire.Frame {
		select {
		case waiting <- struct{}{}:
		default:
		}
		<-ctx.Done() // no answer until the test ends
		return nil
	})
	var logs testutil.Buffer
	a := rawAgentLog(t, p, addr, 1, teeLogger(t, "agent", &logs))
	select {
	case <-waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the op did not reach the raw core within 30 s")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := a.Stats()[0].Parked; got != 0 {
		t.Errorf("parked %d; want none: the agent ended the stream", got)
	}
	if line := grepLines(logs.String(), "breaks the protocol"); line != "" {
		t.Errorf("the agent logged its own closed stream as the core's broken answer:\n%s", line)
	}
}

// twoVersions are two 32 KiB versions of a state op's payload that share
// their first half: the second goes as a delta on the first.
func twoVersions() (v1, v2 []byte) {
	v1 = testutil.RandomBytes(1, 32<<10)
	return v1, append(slices.Clone(v1[:16<<10]), testutil.RandomBytes(2, 16<<10)...)
}

// stateVersions returns put, which puts a version of state key into a,
// and next, which returns the codec mode of the next op to reach the raw
// core (sent on modes) within 5 s, a parked op's wait being 10 s; a
// failure says why() too.
func stateVersions(t *testing.T, a *Agent, key string, modes <-chan codec.Mode, why func() string) (put func([]byte), next func(what string) codec.Mode) {
	put = func(v []byte) {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Kind: edgesync.StateOp, Priority: edgesync.Normal, Payload: bytes.NewReader(v)})
	}
	next = func(what string) codec.Mode {
		select {
		case m := <-modes:
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not reach the raw core within 5 s (a parked op waits 10 s)\n%s", what, why())
			return 0
		}
	}
	return put, next
}
