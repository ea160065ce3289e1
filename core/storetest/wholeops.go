package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// testApplyWholeOps applies the ops of a stream of several at once
// (core.WholeOpsApplier): events small and large (the journal's, inline,
// staged), state ops of one key, an op applied before, a bad hash, a
// short op, an op over the quota. Each op gets its own result and only
// its own error; events are stored in the ops' order and a key's
// versions follow the ops; applied again, every op is a duplicate and
// nothing is stored twice; two callers applying the same ops at once (two
// streams, or two cores on one store) store each once.
func testApplyWholeOps(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{ChunkSize: 4096, InlineMax: 64 << 10, Quota: 1 << 20})
	wa := s
	before := Payload(99, 200)
	mustApply(t, s, "a", Header(OpID(1), edgesync.EventOp, "log", before), before)

	type op struct {
		kind edgesync.OpKind
		key  string
		size int
		bad  string // "hash", "short", "quota": the error it must get
	}
	spec := []op{
		{edgesync.EventOp, "log", 300, ""},
		{edgesync.StateOp, "k", 500, ""},
		{edgesync.EventOp, "log", 3000, ""},
		{edgesync.EventOp, "log", 100, "hash"},
		{edgesync.StateOp, "k", 700, ""},
		{edgesync.EventOp, "log", 100 << 10, ""}, // over InlineMax: staged
		{edgesync.EventOp, "log", 0, ""},
		{edgesync.EventOp, "log", 200, "short"},
		{edgesync.EventOp, "other", 2 << 20, "quota"},
		{edgesync.StateOp, "k", 900, ""},
	}
	for i := range 20 {
		spec = append(spec, op{edgesync.EventOp, fmt.Sprintf("log/%d", i%3), 512, ""})
	}
	ops := []core.WholeOp{{Header: Header(OpID(1), edgesync.EventOp, "log", before), Data: before}} // applied before
	for i, o := range spec {
		data := Payload(uint64(10+i), o.size)
		hd := Header(OpID(uint64(10+i)), o.kind, o.key, data)
		switch o.bad {
		case "hash":
			hd.Hash[0] ^= 1
		case "short":
			data = data[:o.size-1]
		}
		ops = append(ops, core.WholeOp{Header: hd, Data: data})
	}
	check := func(res []core.WholeResult, again bool) {
		t.Helper()
		if len(res) != len(ops) {
			t.Fatalf("%d results for %d ops", len(res), len(ops))
		}
		for i, r := range res {
			var want error
			if i > 0 {
				want = map[string]error{"hash": core.ErrHashMismatch, "short": core.ErrIncomplete, "quota": core.ErrQuota}[spec[i-1].bad]
			}
			switch {
			case want != nil && !errors.Is(r.Err, want):
				t.Errorf("op %d: %v, want %v", i, r.Err, want)
			case want == nil && r.Err != nil:
				t.Errorf("op %d: %v (another op's failure leaked into it?)", i, r.Err)
			case want == nil && (i == 0 || again) && !r.Result.Duplicate:
				t.Errorf("op %d applied before: %+v, want a duplicate", i, r.Result)
			case want == nil && i > 0 && !again && r.Result.Duplicate:
				t.Errorf("op %d: a duplicate, applied for the first time", i)
			case want == nil && r.Result.OpID != ops[i].Header.OpID:
				t.Errorf("op %d: result of op %s", i, r.Result.OpID)
			}
		}
		var want []edgesync.OpID
		want = append(want, OpID(1))
		for i, o := range spec {
			if o.kind == edgesync.EventOp && o.bad == "" {
				want = append(want, OpID(uint64(10+i)))
			}
		}
		checkSeqs(t, h, CheckEvents(t, s, "a", want), 1)
		v, data := mustGet(t, s, "a", "k")
		if v.Version != 3 || !bytes.Equal(data, ops[10].Data) {
			t.Fatalf("key k at version %d (%d bytes), want 3, the last op's 900 bytes", v.Version, len(data))
		}
	}
	check(wa.ApplyWholeOps("a", ops), false)
	check(wa.ApplyWholeOps("a", ops), true)

	// Two callers at once, each with the same fresh ops.
	var fresh []core.WholeOp
	for i := range 16 {
		data := Payload(uint64(100+i), 512)
		fresh = append(fresh, core.WholeOp{Header: Header(OpID(uint64(100+i)), edgesync.EventOp, "twice", data), Data: data})
	}
	var wg sync.WaitGroup
	res := make([][]core.WholeResult, 2)
	for c := range res {
		wg.Go(func() { res[c] = wa.ApplyWholeOps("b", fresh) })
	}
	wg.Wait()
	for c := range res {
		for i, r := range res[c] {
			// A conflict with the other caller is the one refusal allowed:
			// the agent sends the op again, and the next pass finds it.
			if r.Err != nil {
				t.Logf("caller %d op %d: %v", c, i, r.Err)
			}
		}
	}
	for i, r := range wa.ApplyWholeOps("b", fresh) {
		if r.Err != nil || !r.Result.Duplicate {
			t.Errorf("op %d sent again after two callers: %+v, %v; want a duplicate", i, r.Result, r.Err)
		}
	}
	_, n := EventsByOp(t, s, "b")
	for _, o := range fresh {
		if n[o.Header.OpID] != 1 {
			t.Errorf("op %s stored %d times by two callers, want once", o.Header.OpID, n[o.Header.OpID])
		}
	}
}
