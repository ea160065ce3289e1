package jsstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// The crash test runs this test binary again as a writer process
// (crashChildEnv set) that applies ops to a JetStream store and kills
// itself with SIGKILL at a chosen point between the writes of a commit.

const crashChildEnv = "EDGE_SYNC_JS_CRASH_CHILD"

type crashPlan struct {
	URL    string `json:"url"`
	Prefix string `json:"prefix"`
	Step   string `json:"step"`  // the hook's step to die at
	Nth    int    `json:"nth"`   // die at its nth occurrence
	Batch  bool   `json:"batch"` // events in atomic batches, as on a replicated store
	Whole  bool   `json:"whole"` // all ops in one ApplyWholeOps, as a stream of several
}

// crashOps are the ops a writer sends: small and staged, events and
// versions of a few keys.
func crashOps() []struct {
	hdr  core.PartialHeader
	data []byte
} {
	var out []struct {
		hdr  core.PartialHeader
		data []byte
	}
	for i := range 12 {
		size := 100 + 37*i
		if i%3 == 1 {
			size = 20_000 + 1000*i // over the test's InlineMax: staged
		}
		d := storetest.Payload(uint64(i), size)
		kind, key := edgesync.EventOp, fmt.Sprintf("log/%d", i%2)
		if i%2 == 1 {
			kind, key = edgesync.StateOp, fmt.Sprintf("k%d", i%4)
		}
		out = append(out, struct {
			hdr  core.PartialHeader
			data []byte
		}{storetest.Header(storetest.OpID(uint64(i+1)), kind, key, d), d})
	}
	return out
}

var crashCfg = core.Config{ChunkSize: 4096, InlineMax: 8192}

// sendOp sends an op as the core's server does: begin, the data in
// chunks from where the store holds it, commit.
func sendOp(s *Store, agent string, h core.PartialHeader, data []byte) (core.Result, error) {
	held, dup, err := s.BeginPartial(agent, h)
	if err != nil || dup {
		return core.Result{Duplicate: dup}, err
	}
	for off := held; off < h.Size; off += 3000 {
		if err := s.WritePartial(agent, h.OpID, off, data[off:min(off+3000, h.Size)]); err != nil {
			return core.Result{}, err
		}
	}
	return s.CommitPartial(agent, h.OpID)
}

// killAt makes this process kill itself with SIGKILL at the nth time
// the commit's hook reaches step.
func killAt(step string, nth int) {
	n := 0
	hook = func(at string) {
		if at == step {
			if n++; n == nth {
				fmt.Println("KILLED", step)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
}

func crashChild() {
	var p crashPlan
	if err := json.Unmarshal([]byte(os.Getenv(crashChildEnv)), &p); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	killAt(p.Step, p.Nth)
	s, err := Open(context.Background(), Config{Config: crashCfg, URLs: []string{p.URL}, Prefix: p.Prefix, SweepInterval: -1, forceBatches: p.Batch})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	if p.Whole {
		for i, r := range s.ApplyWholeOps("site", wholeOps(crashOps())) {
			if r.Err != nil {
				fmt.Println("ERROR", r.Err)
				os.Exit(1)
			}
			fmt.Println("ACKED", crashOps()[i].hdr.OpID)
		}
		fmt.Println("DONE")
		os.Exit(0)
	}
	for _, op := range crashOps() {
		if _, err := sendOp(s, "site", op.hdr, op.data); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("ACKED", op.hdr.OpID)
	}
	fmt.Println("DONE")
	os.Exit(0)
}

// wholeOps are ops as one stream of several hands them to the store.
func wholeOps(ops []struct {
	hdr  core.PartialHeader
	data []byte
}) []core.WholeOp {
	out := make([]core.WholeOp, len(ops))
	for i, op := range ops {
		out[i] = core.WholeOp{Header: op.hdr, Data: op.data}
	}
	return out
}

// TestCrashBetweenWrites kills a writer process with SIGKILL between the
// writes of a commit (after the data chunks, after a state op's applied
// entry, after an event's batch of marker and event, after the effect,
// after the owner marker), then has another store
// receive every op again, as agents resend what was not acknowledged:
// every op ends up visible exactly once, byte-identical, and the ops
// acknowledged before the kill come back as duplicates. The "whole"
// steps apply the ops as one stream of several (ApplyWholeOps), killed
// after a group's applied entries and before its events, or after a
// group of event batches, and resend them the same way.
func TestCrashBetweenWrites(t *testing.T) {
	srv := natstest.Run(t)
	steps := []struct {
		step  string
		nth   int
		batch bool
		whole bool
	}{
		{"chunks-written", 3, false, false}, {"applied-created", 1, false, false}, {"applied-created", 2, false, false}, {"applied-created", 4, false, false},
		{"applied-created", 5, false, false}, {"staged-visible", 1, false, false}, {"staged-visible", 2, false, false}, {"staged-marked", 3, false, false},
		// Events in atomic batches (a replicated store): after the batch
		// of a small and of a staged event, after a staged event's owner
		// marker; applied-created is then a state op's.
		{"event-batch", 1, true, false}, {"event-batch", 3, true, false}, {"applied-created", 2, true, false}, {"staged-marked", 2, true, false},
		{"applied-created", 1, false, true}, {"applied-created", 3, false, true}, {"event-batch", 1, true, true}, {"event-batch", 2, true, true},
	}
	for _, st := range steps {
		name := fmt.Sprintf("%s#%d", st.step, st.nth)
		if st.batch {
			name += "/batches"
		}
		if st.whole {
			name += "/whole"
		}
		t.Run(name, func(t *testing.T) {
			prefix := fmt.Sprintf("t%d", prefixes.Add(1))
			acked := runCrashChild(t, crashPlan{URL: srv.URL(), Prefix: prefix, Step: st.step, Nth: st.nth, Batch: st.batch, Whole: st.whole})
			s := openWith(t, Config{Config: crashCfg, URLs: []string{srv.URL()}, Prefix: prefix, SweepInterval: -1, forceBatches: st.batch})
			ops := crashOps()
			if st.whole {
				for i, r := range s.ApplyWholeOps("site", wholeOps(ops)) {
					if r.Err != nil {
						t.Fatalf("resend %s: %v", ops[i].hdr.OpID, r.Err)
					}
					if acked[ops[i].hdr.OpID.String()] && !r.Result.Duplicate {
						t.Errorf("op %s was acknowledged before the kill, but applied again: %+v", ops[i].hdr.OpID, r.Result)
					}
				}
				checkExactlyOnce(t, s, "site", ops)
				return
			}
			for _, op := range ops {
				res, err := sendOp(s, "site", op.hdr, op.data)
				if err != nil {
					t.Fatalf("resend %s: %v", op.hdr.OpID, err)
				}
				if acked[op.hdr.OpID.String()] && !res.Duplicate {
					t.Errorf("op %s was acknowledged before the kill, but applied again: %+v", op.hdr.OpID, res)
				}
			}
			checkExactlyOnce(t, s, "site", ops)
		})
	}
}

// runCrashChild runs a writer until it kills itself and returns the op
// IDs it saw acknowledged.
func runCrashChild(t *testing.T, p crashPlan) map[string]bool {
	t.Helper()
	env, _ := json.Marshal(p)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(env))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("writer was not killed (%v):\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("writer still running after 2 min:\n%s", out.String())
	}
	acked := map[string]bool{}
	killed := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "ACKED":
			acked[f[1]] = true
		case len(f) == 2 && f[0] == "KILLED":
			killed = true
		}
	}
	if !killed {
		t.Fatalf("writer died elsewhere than at %s:\n%s", p.Step, out.String())
	}
	return acked
}

// checkExactlyOnce checks that every event op is in the store once with
// its data, and every key holds the data of its newest op.
func checkExactlyOnce(t *testing.T, s *Store, agent string, ops []struct {
	hdr  core.PartialHeader
	data []byte
}) {
	t.Helper()
	evs, seen := storetest.EventsByOp(t, s, agent)
	latest := map[string]int{}
	for i, op := range ops {
		switch op.hdr.Kind {
		case edgesync.EventOp:
			if seen[op.hdr.OpID] != 1 {
				t.Errorf("event %s stored %d times", op.hdr.OpID, seen[op.hdr.OpID])
			}
		case edgesync.StateOp:
			latest[op.hdr.Key] = i
		}
	}
	for _, e := range evs {
		_, o, err := s.EventData(agent, e.Seq)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, o.Size())
		if _, err := o.ReadAt(b, 0); err != nil && len(b) > 0 {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.hdr.OpID == e.OpID && !bytes.Equal(b, op.data) {
				t.Errorf("event %s: data differs", e.OpID)
			}
		}
	}
	for key, i := range latest {
		v, o, err := s.Current(agent, key)
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		b := make([]byte, o.Size())
		if _, err := o.ReadAt(b, 0); err != nil && len(b) > 0 {
			t.Fatal(err)
		}
		if v.OpID != ops[i].hdr.OpID || !bytes.Equal(b, ops[i].data) {
			t.Errorf("key %q holds op %s, want %s with its data", key, v.OpID, ops[i].hdr.OpID)
		}
	}
	if len(evs) != len(seen) {
		t.Errorf("%d events for %d ops", len(evs), len(seen))
	}
}
