package soak

import (
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/outbox"
)

// soakResult counts what became of the accepted ops.
type soakResult struct {
	accepted, delivered, lost, duplicated, corrupted int
	// superseded counts state ops replaced by a newer version of their
	// key before they were sent; unaccounted counts events at the core
	// from puts whose answer was lost (the agent died answering).
	superseded, unaccounted int
	problems                []string
}

func (r *soakResult) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// verify stops both processes and reads the core's store file itself:
// every accepted event must be there once with the bytes that were put;
// every accepted state op must be in the applied-op index, and the current
// version of each key must be its newest accepted version, byte for byte,
// or a newer one.
func (s *soak) verify() soakResult {
	s.mu.Lock()
	s.core.kill()
	s.agent.kill()
	s.mu.Unlock()
	st, err := core.Open(filepath.Join(s.dir, "core", "core.db"), core.Config{})
	if err != nil {
		s.t.Fatalf("open the core's store: %v", err)
	}
	defer st.Close()

	accepted := s.acceptedOps()
	r := soakResult{accepted: len(accepted)}
	byID := map[edgesync.OpID]acceptedOp{}
	for _, op := range accepted {
		byID[op.id] = op
	}
	// Events: each accepted one exactly once, with its bytes.
	count := map[edgesync.OpID]int{}
	for from := uint64(1); ; {
		evs, err := st.Events(soakAgent, from, 1000)
		if err != nil {
			s.t.Fatalf("read events: %v", err)
		}
		for _, e := range evs {
			count[e.OpID]++
			op, ok := byID[e.OpID]
			if !ok {
				r.unaccounted++
				continue
			}
			if sum := eventSum(s, st, e.Seq); sum != op.sha {
				r.corrupted++
				r.problem("event %s (%s) stored with other bytes: %x, put %x", op.id, op.key, sum[:8], op.sha[:8])
			}
		}
		if len(evs) < 1000 {
			break
		}
		from = evs[len(evs)-1].Seq + 1
	}
	for _, op := range accepted {
		if op.kind != edgesync.EventOp {
			continue
		}
		switch n := count[op.id]; {
		case n == 0:
			r.lost++
			r.problem("event %s (%s, %s) not at the core; %s", op.id, op.key, op.prio, s.whereIs(st, op))
		case n > 1:
			r.duplicated++
			r.problem("event %s (%s) at the core %d times", op.id, op.key, n)
		default:
			r.delivered++
		}
	}
	// State: every accepted op applied, or superseded by a newer version
	// of its key (the outbox drops an older unsent version when a newer
	// one comes); each key at its newest accepted version, byte for byte,
	// or at a newer one.
	current := map[string]core.Version{}
	for key, op := range s.newest() {
		v, obj, err := st.Current(soakAgent, key)
		if err != nil {
			r.problem("key %s: no current version (%v)", key, err)
			continue
		}
		current[key] = v
		if v.OpID != op.id {
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(obj, 0, obj.Size())); err != nil {
			s.t.Fatalf("read key %s: %v", key, err)
		}
		if sum := [32]byte(h.Sum(nil)); sum != op.sha {
			r.corrupted++
			r.problem("key %s (op %s) stored with other bytes: %x, put %x", key, op.id, sum[:8], op.sha[:8])
		}
	}
	for _, op := range accepted {
		if op.kind != edgesync.StateOp {
			continue
		}
		ok, err := st.Applied(soakAgent, op.id)
		if err != nil {
			s.t.Fatalf("applied index: %v", err)
		}
		cur, hasCur := current[op.key]
		switch {
		case hasCur && cur.OpID.Compare(op.id) < 0:
			r.lost++
			r.problem("key %s at op %s, older than the accepted %s", op.key, cur.OpID, op.id)
		case ok:
			r.delivered++
		case hasCur && cur.OpID.Compare(op.id) > 0:
			r.superseded++
		default:
			r.lost++
			r.problem("state op %s (%s, %s) neither applied at the core nor superseded; %s", op.id, op.key, op.prio, s.whereIs(st, op))
		}
	}
	return r
}

// eventSum returns the SHA-256 of the bytes the store holds for event seq.
func eventSum(s *soak, st *core.Store, seq uint64) [32]byte {
	_, obj, err := st.EventData(soakAgent, seq)
	if err != nil {
		s.t.Fatalf("read event %d: %v", seq, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(obj, 0, obj.Size())); err != nil {
		s.t.Fatalf("read event %d: %v", seq, err)
	}
	return [32]byte(h.Sum(nil))
}

// whereIs says what the agent's outbox and the core's store hold of an op
// that did not arrive, for the report.
func (s *soak) whereIs(st *core.Store, op acceptedOp) string {
	var b strings.Builder
	ob, err := outbox.Open(filepath.Join(s.dir, "agent", "outbox.db"), outbox.Options{})
	if err != nil {
		fmt.Fprintf(&b, "outbox not opened (%v)", err)
	} else {
		if o, err := ob.Get(op.id); err != nil {
			fmt.Fprintf(&b, "not in the outbox (%v)", err)
		} else {
			fmt.Fprintf(&b, "in the outbox (enqueued %s, summary sent %v)", o.EnqueuedAt.Format(time.TimeOnly), o.SummarySent)
		}
		if err := ob.Close(); err != nil {
			fmt.Fprintf(&b, " (outbox close: %v)", err)
		}
	}
	parts, _ := st.Partials(soakAgent)
	for _, p := range parts {
		if p.Header.OpID == op.id {
			fmt.Fprintf(&b, "; the core holds %d of %d bytes in part", p.Held, p.Header.Size)
		}
	}
	if sum, err := st.Summary(soakAgent, op.key); err == nil && sum.OpID == op.id {
		b.WriteString("; the core has its summary")
	}
	return b.String()
}
