package outbox

import (
	"slices"

	edgesync "github.com/edge-sync/edge-sync"
)

// entry is the in-memory state of one stored op.
type entry struct {
	op     Op
	leased bool // handed out by Lease and not yet acked or released
	busy   bool // an in-flight commit is removing it (ack, drop)
}

// index holds every stored op's metadata in memory, in the orders the
// outbox serves them: per endpoint and priority, by ID (= enqueue order).
// All access is under Outbox.mu.
type index struct {
	ops    map[edgesync.OpID]*entry
	queues map[string]*[edgesync.NumPriorities][]edgesync.OpID
	states map[stateKey][]edgesync.OpID // State ops per (endpoint, key)

	// usedOps and usedBytes count ops that are neither busy nor gone, plus
	// the reservations of Enqueues that are committing.
	usedOps   int
	usedBytes int64
}

type stateKey struct{ endpoint, key string }

func newIndex() *index {
	return &index{
		ops:    make(map[edgesync.OpID]*entry),
		queues: make(map[string]*[edgesync.NumPriorities][]edgesync.OpID),
		states: make(map[stateKey][]edgesync.OpID),
	}
}

func insertSorted(s []edgesync.OpID, id edgesync.OpID) []edgesync.OpID {
	if n := len(s); n == 0 || s[n-1].Compare(id) < 0 {
		return append(s, id)
	}
	i, _ := slices.BinarySearchFunc(s, id, edgesync.OpID.Compare)
	return slices.Insert(s, i, id)
}

func removeSorted(s []edgesync.OpID, id edgesync.OpID) []edgesync.OpID {
	if i, ok := slices.BinarySearchFunc(s, id, edgesync.OpID.Compare); ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// add inserts a committed op; its capacity is already counted if reserved.
func (x *index) add(op Op) {
	e := &entry{op: op}
	x.ops[op.ID] = e
	q := x.queues[op.Endpoint]
	if q == nil {
		q = new([edgesync.NumPriorities][]edgesync.OpID)
		x.queues[op.Endpoint] = q
	}
	q[op.Priority] = insertSorted(q[op.Priority], op.ID)
	if op.Kind == edgesync.StateOp {
		k := stateKey{op.Endpoint, op.Key}
		x.states[k] = insertSorted(x.states[k], op.ID)
	}
}

// remove deletes an op from the index; busy ops are no longer counted.
func (x *index) remove(id edgesync.OpID) {
	e := x.ops[id]
	if e == nil {
		return
	}
	if !e.busy {
		x.usedOps--
		x.usedBytes -= e.op.Size
	}
	delete(x.ops, id)
	op := &e.op
	q := x.queues[op.Endpoint]
	q[op.Priority] = removeSorted(q[op.Priority], id)
	empty := true
	for _, s := range q {
		empty = empty && len(s) == 0
	}
	if empty {
		delete(x.queues, op.Endpoint)
	}
	if op.Kind == edgesync.StateOp {
		k := stateKey{op.Endpoint, op.Key}
		if s := removeSorted(x.states[k], id); len(s) == 0 {
			delete(x.states, k)
		} else {
			x.states[k] = s
		}
	}
}

// setBusy marks e as being removed and releases its capacity.
func (x *index) setBusy(e *entry, busy bool) {
	if e.busy == busy {
		return
	}
	e.busy = busy
	if busy {
		x.usedOps--
		x.usedBytes -= e.op.Size
	} else {
		x.usedOps++
		x.usedBytes += e.op.Size
	}
}

// oldestAt returns the oldest op of priority p over all endpoints that is
// not busy, or nil.
func (x *index) oldestAt(p edgesync.Priority) *entry {
	var best *entry
	for _, q := range x.queues {
		for _, id := range q[p] {
			e := x.ops[id]
			if e.busy {
				continue
			}
			if best == nil || id.Compare(best.op.ID) < 0 {
				best = e
			}
			break
		}
	}
	return best
}

// plan decides what a new op drops: older unleased State ops with its key
// (superseded), then the oldest ops of the lowest priority present while the
// outbox would be over a limit (capacity), but only ops of strictly lower
// priority than op. It marks the victims busy and reserves op's capacity;
// undo reverts both. It returns ErrFull, with nothing changed, if op cannot fit.
func (x *index) plan(op *Op, maxOps int, maxBytes int64) (victims []*entry, reasons []Reason, err error) {
	if op.Kind == edgesync.StateOp {
		for _, id := range x.states[stateKey{op.Endpoint, op.Key}] {
			if e := x.ops[id]; !e.leased && !e.busy && id.Compare(op.ID) < 0 {
				x.setBusy(e, true)
				victims = append(victims, e)
				reasons = append(reasons, ReasonSuperseded)
			}
		}
	}
	for x.usedOps+1 > maxOps || x.usedBytes+op.Size > maxBytes {
		var v *entry
		for p := edgesync.Priority(edgesync.NumPriorities - 1); p > op.Priority && v == nil; p-- {
			v = x.oldestAt(p)
		}
		if v == nil {
			x.undo(victims)
			return nil, nil, ErrFull
		}
		x.setBusy(v, true)
		victims = append(victims, v)
		reasons = append(reasons, ReasonCapacity)
	}
	x.usedOps++
	x.usedBytes += op.Size
	return victims, reasons, nil
}

func (x *index) undo(victims []*entry) {
	for _, v := range victims {
		x.setBusy(v, false)
	}
}
