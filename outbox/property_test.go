package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"pgregory.net/rapid"
)

// mop is the model's view of one stored op.
type mop struct {
	op     Op
	data   []byte
	leased bool
}

// model is the in-memory reference the property test holds the outbox to.
// Its ops slice is in ID order, which is enqueue order.
type model struct {
	ops              []*mop
	maxOps, maxBytes int
	maxOp            int
	drops            [NumReasons]uint64
}

func (m *model) find(id edgesync.OpID) int {
	return slices.IndexFunc(m.ops, func(o *mop) bool { return o.op.ID == id })
}

func (m *model) bytes() int {
	n := 0
	for _, o := range m.ops {
		n += len(o.data)
	}
	return n
}

// plan returns what enqueueing n drops, or ErrTooLarge / ErrFull. It is a
// plain restatement of the rules, independent of index.plan.
func (m *model) plan(n NewOp, size int) ([]Drop, error) {
	if size > m.maxOp {
		return nil, ErrTooLarge
	}
	gone := map[edgesync.OpID]bool{}
	var drops []Drop
	count, used := len(m.ops), m.bytes()
	if n.Kind == edgesync.StateOp {
		for _, o := range m.ops {
			if o.op.Kind == edgesync.StateOp && o.op.Endpoint == n.Endpoint && o.op.Key == n.Key && !o.leased {
				gone[o.op.ID] = true
				drops = append(drops, dropOf(&o.op, ReasonSuperseded))
				count--
				used -= len(o.data)
			}
		}
	}
	for count+1 > m.maxOps || used+size > m.maxBytes {
		// The lowest priority present among the remaining ops, oldest first.
		var victim *mop
		for _, o := range m.ops {
			if !gone[o.op.ID] && (victim == nil || o.op.Priority > victim.op.Priority) {
				victim = o
			}
		}
		if victim == nil || victim.op.Priority <= n.Priority {
			return nil, ErrFull
		}
		gone[victim.op.ID] = true
		drops = append(drops, dropOf(&victim.op, ReasonCapacity))
		count--
		used -= len(victim.data)
	}
	return drops, nil
}

func (m *model) remove(id edgesync.OpID) {
	if i := m.find(id); i >= 0 {
		m.ops = slices.Delete(m.ops, i, i+1)
	}
}

func drain(ch <-chan Drop) []Drop {
	var out []Drop
	for {
		select {
		case d := <-ch:
			out = append(out, d)
		default:
			return out
		}
	}
}

var endpoints = []string{"a", "b"}

func TestPropertyAgainstModel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		path := filepath.Join(dir, fmt.Sprintf("prop-%d.db", run))
		clk := newClock()
		opts := Options{MaxOps: 6, MaxBytes: 400, MaxOpBytes: 350, Now: clk.Now, chunkSize: 64, stageChunks: 2}
		o, err := Open(path, opts)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = o.Close() }()
		m := &model{maxOps: 6, maxBytes: 400, maxOp: 350}
		ctx := context.Background()

		pick := func(rt *rapid.T) *mop {
			if len(m.ops) == 0 {
				return nil
			}
			return m.ops[rapid.IntRange(0, len(m.ops)-1).Draw(rt, "op")]
		}

		rt.Repeat(map[string]func(*rapid.T){
			"": func(rt *rapid.T) {
				s, err := o.Stats()
				if err != nil {
					rt.Fatal(err)
				}
				if s.Total.Ops != len(m.ops) || s.Total.Bytes != int64(m.bytes()) || s.Drops != m.drops {
					rt.Fatalf("stats %+v; model has %d ops, %d bytes, drops %v", s, len(m.ops), m.bytes(), m.drops)
				}
				for _, ep := range endpoints {
					for p := range edgesync.Priority(edgesync.NumPriorities) {
						got, err := o.List(ep, p, 0)
						if err != nil {
							rt.Fatal(err)
						}
						var want []Op
						for _, mo := range m.ops {
							if mo.op.Endpoint == ep && mo.op.Priority == p {
								want = append(want, mo.op)
							}
						}
						if len(got) != len(want) {
							rt.Fatalf("List(%s, %s) has %d ops, model %d", ep, p, len(got), len(want))
						}
						for i := range got {
							g, w := got[i], want[i]
							if g.ID != w.ID || g.Size != w.Size || g.Kind != w.Kind || g.Key != w.Key ||
								g.SummarySent != w.SummarySent || !g.ExpiresAt.Equal(w.ExpiresAt) || !bytes.Equal(g.Summary, w.Summary) {
								rt.Fatalf("List(%s, %s)[%d] = %+v, model %+v", ep, p, i, g, w)
							}
						}
					}
				}
			},
			"enqueue": func(rt *rapid.T) {
				size := rapid.IntRange(0, 380).Draw(rt, "size")
				n := NewOp{
					Endpoint: rapid.SampledFrom(endpoints).Draw(rt, "endpoint"),
					Key:      rapid.SampledFrom([]string{"k1", "k2", "k3"}).Draw(rt, "key"),
					Priority: edgesync.Priority(rapid.IntRange(0, edgesync.NumPriorities-1).Draw(rt, "prio")),
					Kind:     rapid.SampledFrom(edgesync.OpKinds()).Draw(rt, "kind"),
					TTL:      rapid.SampledFrom([]time.Duration{0, 10 * time.Second, time.Minute}).Draw(rt, "ttl"),
					Summary:  []byte(rapid.StringN(0, 8, -1).Draw(rt, "summary")),
				}
				data := payloadOf(byte(size), size)
				n.Payload = bytes.NewReader(data)
				wantDrops, wantErr := m.plan(n, size)
				op, err := o.Enqueue(ctx, n)
				if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
					rt.Fatalf("Enqueue(size %d prio %s kind %s) = %v, model says %v", size, n.Priority, n.Kind, err, wantErr)
				}
				got := drain(o.Drops())
				if err != nil {
					if len(got) != 0 {
						rt.Fatalf("failed Enqueue reported drops %+v", got)
					}
					return
				}
				if !slices.Equal(got, wantDrops) {
					rt.Fatalf("drops %+v, model %+v", got, wantDrops)
				}
				for _, d := range wantDrops {
					m.remove(d.ID)
					m.drops[d.Reason]++
				}
				if len(n.Summary) == 0 {
					n.Summary = nil
				}
				want := Op{ID: op.ID, Endpoint: n.Endpoint, Key: n.Key, Priority: n.Priority, Kind: n.Kind,
					Size: int64(size), Summary: n.Summary, EnqueuedAt: clk.Now()}
				if n.TTL > 0 {
					want.ExpiresAt = clk.Now().Add(n.TTL)
				}
				if len(m.ops) > 0 && op.ID.Compare(m.ops[len(m.ops)-1].op.ID) <= 0 {
					rt.Fatalf("new ID %s not after %s", op.ID, m.ops[len(m.ops)-1].op.ID)
				}
				m.ops = append(m.ops, &mop{op: want, data: data})
				if got := readAll(rt, o, op.ID); !bytes.Equal(got, data) {
					rt.Fatalf("payload of new op %s differs", op.ID)
				}
			},
			"lease": func(rt *rapid.T) {
				ep := rapid.SampledFrom(endpoints).Draw(rt, "endpoint")
				max := rapid.IntRange(0, 4).Draw(rt, "max")
				var prios []edgesync.Priority
				if rapid.Bool().Draw(rt, "some prios") {
					for p := range edgesync.Priority(edgesync.NumPriorities) {
						if rapid.Bool().Draw(rt, "prio") {
							prios = append(prios, p)
						}
					}
				}
				got, err := o.Lease(ep, max, prios...)
				if err != nil {
					rt.Fatal(err)
				}
				var want []edgesync.OpID
				for p := range edgesync.Priority(edgesync.NumPriorities) {
					if prios != nil && !slices.Contains(prios, p) {
						continue
					}
					for _, mo := range m.ops {
						if len(want) < max && mo.op.Endpoint == ep && mo.op.Priority == p && !mo.leased &&
							(mo.op.ExpiresAt.IsZero() || clk.Now().Before(mo.op.ExpiresAt)) {
							want = append(want, mo.op.ID)
							mo.leased = true
						}
					}
				}
				if !slices.Equal(ids(got), want) {
					rt.Fatalf("Lease(%s, %d, %v) = %v, model %v", ep, max, prios, ids(got), want)
				}
			},
			"ack": func(rt *rapid.T) {
				mo := pick(rt)
				if mo == nil {
					rt.Skip("empty")
				}
				if err := o.Ack(mo.op.ID); err != nil {
					rt.Fatal(err)
				}
				m.remove(mo.op.ID)
				if _, err := o.OpenPayload(mo.op.ID); !errors.Is(err, ErrNotFound) {
					rt.Fatalf("acked op still readable: %v", err)
				}
			},
			"release": func(rt *rapid.T) {
				if mo := pick(rt); mo != nil {
					if err := o.Release(mo.op.ID); err != nil {
						rt.Fatal(err)
					}
					mo.leased = false
				}
			},
			"mark summary": func(rt *rapid.T) {
				if mo := pick(rt); mo != nil {
					if err := o.MarkSummarySent(mo.op.ID); err != nil {
						rt.Fatal(err)
					}
					mo.op.SummarySent = true
				}
			},
			"advance clock": func(rt *rapid.T) {
				clk.Advance(time.Duration(rapid.IntRange(1, 40).Draw(rt, "seconds")) * time.Second)
			},
			"purge": func(rt *rapid.T) {
				got, err := o.PurgeExpired(clk.Now())
				if err != nil {
					rt.Fatal(err)
				}
				var want []Drop
				for _, mo := range m.ops {
					if !mo.op.ExpiresAt.IsZero() && !clk.Now().Before(mo.op.ExpiresAt) {
						want = append(want, dropOf(&mo.op, ReasonExpired))
					}
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("PurgeExpired = %+v, model %+v", got, want)
				}
				if ch := drain(o.Drops()); !slices.Equal(ch, want) {
					rt.Fatalf("Drops channel got %+v, want %+v", ch, want)
				}
				for _, d := range want {
					m.remove(d.ID)
					m.drops[ReasonExpired]++
				}
			},
			"reopen": func(rt *rapid.T) {
				if err := o.Close(); err != nil {
					rt.Fatal(err)
				}
				if o, err = Open(path, opts); err != nil {
					rt.Fatalf("reopen: %v", err)
				}
				m.drops = [NumReasons]uint64{}
				for _, mo := range m.ops {
					mo.leased = false
					if got := readAll(rt, o, mo.op.ID); !bytes.Equal(got, mo.data) {
						rt.Fatalf("payload of %s differs after reopen", mo.op.ID)
					}
				}
			},
		})
	})
}
