package agent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// TestRefusalIsNotSentAgainAtOnce: a core that answers every op with the
// same refusal, whatever its code (an ERROR that ends the stream or a
// NACK), must not get the op again at once: sending it unchanged only
// meets the same answer. A core of another version that does not know
// the op (unknown-op, version, a code this agent does not know), one that
// keeps finding it corrupt or its hash wrong although this outbox holds
// it intact, one that says a full op's delta base is wrong, or that an op
// without a TTL expired: each op goes at most about once in the 2 s after
// the first refusal (it is parked), is kept in the outbox and counted in
// the nacks by code. Before, each of these was a hot loop of streams.
func TestRefusalIsNotSentAgainAtOnce(t *testing.T) {
	const window = 2 * time.Second
	for _, tc := range []erroringCase{
		{name: "ERROR unknown-op", code: wire.CodeUnknownOp, ops: 1},
		{name: "ERROR corrupt, a pack", code: wire.CodeCorrupt, packs: true, ops: 10},
		{name: "ERROR corrupt", code: wire.CodeCorrupt, ops: 1},
		{name: "ERROR hash-mismatch", code: wire.CodeHashMismatch, ops: 1},
		{name: "ERROR base-mismatch", code: wire.CodeBaseMismatch, ops: 1},
		{name: "ERROR expired", code: wire.CodeExpired, ops: 1},
		{name: "ERROR version", code: wire.CodeVersion, ops: 1},
		{name: "ERROR unknown-agent", code: wire.CodeUnknownAgent, ops: 1},
		{name: "ERROR of a code this agent does not know", code: 99, ops: 1},
		{name: "NACK corrupt", code: wire.CodeCorrupt, ops: 1, nack: true},
		{name: "NACK hash-mismatch", code: wire.CodeHashMismatch, ops: 1, nack: true},
		{name: "NACK base-mismatch", code: wire.CodeBaseMismatch, ops: 1, nack: true},
		{name: "NACK expired", code: wire.CodeExpired, ops: 1, nack: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			a, streams := tc.runLogged(t, teeLogger(t, "agent", &logs))
			start := streams.Load()
			time.Sleep(window) // what we measure is how many streams come in a while
			n := streams.Load() - start + 1
			t.Logf("%d streams in the %v after the first refusal %s", n, window, tc.code)
			// Each op is refused once and parked (10 s): a pack of n ops
			// takes up to n streams, one op one.
			if n > int64(tc.ops)+1 {
				t.Errorf("%d streams in the %v after the first refusal %s of %d ops: the agent sent the ops again at once", n, window, tc.code, tc.ops)
			}
			if got := a.Stats()[0].Nacks[nackLabel(tc.code)]; got < 1 {
				t.Errorf("nacks %s: %d, want the refusals counted", tc.code, got)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != tc.ops {
				t.Errorf("the outbox holds %d ops (%v); want all %d kept", ob.Total.Ops, err, tc.ops)
			}
			if tc.code == wire.CodeUnknownOp {
				line := grepLines(logs.String(), "unknown-op")
				if !strings.Contains(line, "[ERROR]") || !strings.Contains(line, "upgrade the core") {
					t.Errorf("the agent's log of the refusal unknown-op, want an ERROR that tells the operator to upgrade the core:\n%s", line)
				}
			}
		})
	}
}

// TestCorruptRefusalChecksTheOutbox: a core that finds an op corrupt
// (NACK or ERROR corrupt) may be right: the op's bytes may have changed
// on this agent's disk. The agent checks the op against the outbox's
// checksums, as it does on hash-mismatch, and quarantines it if damaged,
// so that it is never sent again; the intact ops stay queued.
func TestCorruptRefusalChecksTheOutbox(t *testing.T) {
	for _, nack := range []bool{true, false} {
		t.Run(fmt.Sprintf("nack=%v", nack), func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			addr, _ := rawCore(t, p, false, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame {
				if nack {
					return nackAll(frames, wire.CodeCorrupt)
				}
				return []wire.Frame{&wire.Error{Code: wire.CodeCorrupt, Msg: "the raw core finds the op corrupt"}}
			})
			cfg := quietConfig(coretest.AgentConfig(t, p, addr))
			payloads := map[string][]byte{}
			for i := range 3 {
				payloads[fmt.Sprintf("obj/%d", i)] = testutil.RandomBytes(uint64(i), 64<<10)
			}
			ops := fillStopped(t, p, cfg, payloads)
			const victim = "obj/1"
			testutil.Damage(t, cfg.OutboxPath(), payloads[victim], len(payloads[victim])/2-256, 512)
			a := startAgent(t, p, cfg, Options{})
			testutil.WaitFor(t, 30*time.Second, "the damaged op quarantined", func() bool { return mustStatus(t, a).Quarantined.Ops == 1 })
			r, err := a.VerifyOutbox(context.Background())
			if err != nil || len(r.Quarantined) != 1 || r.Quarantined[0].ID != ops[victim].ID {
				t.Errorf("verify: %+v, %v; want op %s (%s) alone quarantined", r, err, ops[victim].ID, victim)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != len(payloads)-1 {
				t.Errorf("the outbox holds %d ops (%v); want the %d intact ones kept", ob.Total.Ops, err, len(payloads)-1)
			}
		})
	}
}

// TestBrokenAnswerIsNeitherTakenNorSentAgainAtOnce: a core whose answer
// to an op breaks the protocol (it acknowledges or refuses another op,
// answers with a frame that is no answer, or ends the stream without
// one) has not stored the op: it stays in the outbox. Sending it again at
// once would only meet the same answer: it is parked, logged as the
// core's broken answer, and counted in no nacks (the core refused
// nothing).
func TestBrokenAnswerIsNeitherTakenNorSentAgainAtOnce(t *testing.T) {
	const window = 2 * time.Second
	for _, tc := range []struct {
		name   string
		answer func(frames []wire.Frame) []wire.Frame
	}{
		{"an ACK of another op", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Ack{IDs: []edgesync.OpID{edgesync.OpID{7, 7}}}}
		}},
		{"a NACK of another op", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Nack{ID: edgesync.OpID{7, 7}, Code: wire.CodeQuota, Msg: "quota"}}
		}},
		{"a frame that is no answer", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Welcome{Version: 1, Core: "raw", MaxFrame: wire.MaxFrameSize}}
		}},
		{"no answer, the stream ended", func([]wire.Frame) []wire.Frame { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			p := testutil.NewPKI(t, "site-1")
			addr, streams := rawCore(t, p, false, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame { return tc.answer(frames) })
			a := rawAgentLog(t, p, addr, 1, teeLogger(t, "agent", &logs))
			testutil.WaitFor(t, 30*time.Second, "the raw core's first answer", func() bool { return streams.Load() >= 1 })
			start := streams.Load()
			time.Sleep(window) // what we measure is how many streams come in a while
			n := streams.Load() - start + 1
			t.Logf("%d streams in the %v after the first broken answer (%s)", n, window, tc.name)
			if n > 2 {
				t.Errorf("%d streams in the %v after the first broken answer (%s): the agent sent the op again at once", n, window, tc.name)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != 1 {
				t.Errorf("the outbox holds %d ops (%v); want the op kept: the core did not store it", ob.Total.Ops, err)
			}
			if st := a.Stats()[0]; len(st.Nacks) != 0 {
				t.Errorf("nacks %v: want none, the core answered nothing about the op", st.Nacks)
			}
			if line := grepLines(logs.String(), "breaks the protocol"); !strings.Contains(line, "[ERROR]") {
				t.Errorf("the agent's log, want an ERROR that the core's answer breaks the protocol:\n%s", line)
			}
		})
	}
}

// TestHelloRefusalSaysWhy: a core that refuses the agent at hello (it is
// not in the core's agent list) was reached: the agent's log must not say
// it cannot reach the core, but that the core refuses it, why, and what to
// do; the status's last error says the core's reason.
func TestHelloRefusalSaysWhy(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.Allow = func(string) (int64, bool) { return 0, false } })
	var logs testutil.Buffer
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{Logger: teeLogger(t, "agent", &logs)})
	testutil.WaitFor(t, 30*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "retrying with backoff") })
	line := grepLines(logs.String(), "retrying with backoff")
	if strings.Contains(line, "cannot reach the core") || !strings.Contains(line, "refuses this agent") ||
		!strings.Contains(line, "unknown-agent") || !strings.Contains(line, "agent list") {
		t.Errorf("the agent's log of a core that refuses it at hello, want that the core refuses it (unknown-agent), and to add it to the core's agents:\n%s", line)
	}
	if e := mustStatus(t, a).LastError; e == nil || !strings.Contains(e.Error, "not in the core's agent list") {
		t.Errorf("last_error %+v, want the core's reason", e)
	}
}

// TestCoreClosingEachConnectionBacksOff: a core that welcomes the agent
// and closes the connection with a failure of its own (internal) as soon
// as the agent opens an op stream gets the next connection after the dial
// backoff (0.5 s doubling), as a core that cannot be reached does, not at
// once: a session that did not outlive shortSession does not reset the
// backoff. (A core that shuts down still has the agent dial again, or
// fail over, at once.)
func TestCoreClosingEachConnectionBacksOff(t *testing.T) {
	const window = 2 * time.Second
	p := testutil.NewPKI(t, "site-1")
	var conns atomic.Int64
	addr, _ := rawCoreConns(t, p, false, func(conn *quic.Conn) {
		conns.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.AcceptStream(ctx); err == nil {
			conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeInternal), "the raw core closes the connection at the first op")
		}
	}, func(context.Context, int64, []wire.Frame) []wire.Frame { return nil })
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, addr)), Options{})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: strings.NewReader("reading 1")})
	testutil.WaitFor(t, 30*time.Second, "the first connection", func() bool { return conns.Load() >= 1 })
	start := conns.Load()
	time.Sleep(window) // what we measure is how many connections come in a while
	n := conns.Load() - start
	t.Logf("%d connections in the %v after the first, each closed by the core at its first op", n, window)
	if n > 4 { // 0.5 s + 1 s: 2 connections, and 2 to spare
		t.Errorf("%d connections in the %v after the first, each closed by the core at its first op: the agent connects again without the dial backoff", n, window)
	}
}
