package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

func TestEnqueueLeaseAckReopen(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{chunkSize: 1000, stageChunks: 2})
	want := map[edgesync.OpID][]byte{}
	var order []edgesync.OpID
	for i, size := range []int{0, 1, 999, 1000, 1001, 4500} {
		data := payloadOf(byte(i), size)
		op := enq(t, o, NewOp{Endpoint: "core", Key: fmt.Sprint("k", i), Priority: edgesync.Normal,
			Payload: bytes.NewReader(data), Summary: []byte("sum")})
		if op.Size != int64(size) || op.ID.IsZero() || string(op.Summary) != "sum" {
			t.Fatalf("op %d: got size %d id %s summary %q", i, op.Size, op.ID, op.Summary)
		}
		want[op.ID] = data
		order = append(order, op.ID)
	}
	for id, data := range want {
		if got := readAll(t, o, id); !bytes.Equal(got, data) {
			t.Fatalf("payload %s: got %d bytes, want %d (equal=%v)", id, len(got), len(data), bytes.Equal(got, data))
		}
	}
	// Random-offset reads across chunk boundaries.
	p, err := o.OpenPayload(order[5])
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := p.ReadAt(buf, 800)
	if n != 1500 || err != nil || !bytes.Equal(buf, want[order[5]][800:2300]) {
		t.Fatalf("ReadAt(800): n=%d err=%v", n, err)
	}
	n, err = p.ReadAt(buf, 4000)
	if n != 500 || err != io.EOF || !bytes.Equal(buf[:500], want[order[5]][4000:]) {
		t.Fatalf("ReadAt(4000): n=%d err=%v, want 500, EOF", n, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)

	o = openT(t, path, Options{})
	if o.chunkSize != 1000 {
		t.Fatalf("reopened chunk size %d, want the file's 1000", o.chunkSize)
	}
	got, err := o.List("core", edgesync.Normal, 0)
	if err != nil || !slices.Equal(ids(got), order) {
		t.Fatalf("List after reopen = %v, %v; want %v", ids(got), err, order)
	}
	for id, data := range want {
		if got := readAll(t, o, id); !bytes.Equal(got, data) {
			t.Fatalf("payload %s after reopen differs", id)
		}
	}
	leased, err := o.Lease("core", 4)
	if err != nil || !slices.Equal(ids(leased), order[:4]) {
		t.Fatalf("Lease 4 = %v, %v", ids(leased), err)
	}
	more, _ := o.Lease("core", 10)
	if !slices.Equal(ids(more), order[4:]) {
		t.Fatalf("second Lease = %v, want the rest %v", ids(more), order[4:])
	}
	if err := o.Ack(order[0], order[1]); err != nil {
		t.Fatal(err)
	}
	if err := o.Ack(order[0]); err != nil {
		t.Fatalf("repeated Ack: %v", err)
	}
	if _, err := o.OpenPayload(order[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenPayload of acked op: %v, want ErrNotFound", err)
	}
	if err := o.Release(order[2]); err != nil {
		t.Fatal(err)
	}
	again, _ := o.Lease("core", 10)
	if !slices.Equal(ids(again), order[2:3]) {
		t.Fatalf("Lease after Release = %v, want %v", ids(again), order[2:3])
	}
	// A payload handle outliving its op reports ErrNotFound.
	p, _ = o.OpenPayload(order[5])
	if err := o.Ack(order[5]); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadAt(buf, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAt after Ack: %v, want ErrNotFound", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	// Leases are not persisted: after reopen every unacked op is offered.
	o = openT(t, path, Options{})
	all, _ := o.Lease("core", 10)
	if !slices.Equal(ids(all), []edgesync.OpID{order[2], order[3], order[4]}) {
		t.Fatalf("Lease after reopen = %v", ids(all))
	}
}

func TestPriorityOrderAndEndpoints(t *testing.T) {
	o := openT(t, tempPath(t), Options{})
	var byPrio [edgesync.NumPriorities][]edgesync.OpID
	for i := range 18 {
		p := edgesync.Priority(5 - i%6)
		op := enq(t, o, NewOp{Endpoint: "a", Key: "k", Priority: p, Payload: strings.NewReader("x")})
		byPrio[p] = append(byPrio[p], op.ID)
	}
	enq(t, o, NewOp{Endpoint: "b", Priority: edgesync.Critical})
	got, err := o.Lease("a", 100)
	if err != nil {
		t.Fatal(err)
	}
	var want []edgesync.OpID
	for _, s := range byPrio {
		want = append(want, s...)
	}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Lease order = %v\nwant %v", ids(got), want)
	}
	if err := o.Release(ids(got)...); err != nil {
		t.Fatal(err)
	}
	only, _ := o.Lease("a", 100, edgesync.Background, edgesync.High)
	if w := append(slices.Clone(byPrio[edgesync.High]), byPrio[edgesync.Background]...); !slices.Equal(ids(only), w) {
		t.Fatalf("Lease(high, background) = %v, want %v", ids(only), w)
	}
	if b, _ := o.Lease("b", 10); len(b) != 1 {
		t.Fatalf("endpoint b leased %d ops, want 1", len(b))
	}
	if none, _ := o.Lease("nobody", 10); len(none) != 0 {
		t.Fatalf("unknown endpoint leased %d ops", len(none))
	}
	s, err := o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Ops != 19 || s.ByEndpoint["a"].Ops != 18 || s.ByEndpoint["a"].Bytes != 18 || s.ByPriority[edgesync.Critical].Ops != 4 ||
		s.ByEndpointPriority["a"][edgesync.Critical].Ops != 3 || s.ByEndpointPriority["b"][edgesync.Critical].Ops != 1 || s.Leased != 7 {
		t.Fatalf("Stats = %+v", s)
	}
	all, _ := o.List("", edgesync.Critical, 0)
	if len(all) != 4 || all[3].Endpoint != "b" {
		t.Fatalf("List all endpoints critical = %d ops, last %q", len(all), all[len(all)-1].Endpoint)
	}
}

func TestCapacityEviction(t *testing.T) {
	o := openT(t, tempPath(t), Options{MaxOps: 3, MaxBytes: 100})
	ctx := context.Background()
	a := enq(t, o, NewOp{Endpoint: "e", Key: "a", Priority: edgesync.Background, Payload: strings.NewReader("aa")})
	b := enq(t, o, NewOp{Endpoint: "f", Key: "b", Priority: edgesync.Background})
	c := enq(t, o, NewOp{Endpoint: "e", Key: "c", Priority: edgesync.Normal})
	// Equal priority to the lowest present: ErrFull, nothing dropped.
	if _, err := o.Enqueue(ctx, NewOp{Endpoint: "e", Priority: edgesync.Background}); !errors.Is(err, ErrFull) {
		t.Fatalf("enqueue background into full outbox: %v, want ErrFull", err)
	}
	// Higher priority evicts the oldest of the lowest priority, across endpoints.
	d := enq(t, o, NewOp{Endpoint: "e", Key: "d", Priority: edgesync.High})
	select {
	case dr := <-o.Drops():
		if dr.ID != a.ID || dr.Reason != ReasonCapacity || dr.Key != "a" || dr.Size != 2 || dr.Priority != edgesync.Background {
			t.Fatalf("drop = %+v, want op a by capacity", dr)
		}
	default:
		t.Fatal("no drop reported")
	}
	if _, err := o.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("evicted op still there: %v", err)
	}
	// Bytes limit: a 90-byte op needs room; normal evicts b (background) only.
	_ = enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Critical, Payload: bytes.NewReader(make([]byte, 90))})
	if dr := <-o.Drops(); dr.ID != b.ID {
		t.Fatalf("second drop = %s, want b %s", dr.ID, b.ID)
	}
	// Now full of normal/high/critical; a normal op cannot evict anything
	// of its own or higher priority.
	if _, err := o.Enqueue(ctx, NewOp{Endpoint: "e", Priority: edgesync.Normal}); !errors.Is(err, ErrFull) {
		t.Fatalf("enqueue normal: %v, want ErrFull", err)
	}
	// A 101-byte op can never fit.
	if _, err := o.Enqueue(ctx, NewOp{Endpoint: "e", Priority: edgesync.Critical, Payload: bytes.NewReader(make([]byte, 101))}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("enqueue 101 bytes: %v, want ErrTooLarge", err)
	}
	s, _ := o.Stats()
	if s.Drops[ReasonCapacity] != 2 || s.Total.Ops != 3 || s.Total.Bytes != 90 {
		t.Fatalf("stats = %+v", s)
	}
	_ = c
	_ = d
}

func TestEvictionNeedsEnoughRoomOrNothing(t *testing.T) {
	o := openT(t, tempPath(t), Options{MaxOps: 10, MaxBytes: 100})
	enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Background, Payload: bytes.NewReader(make([]byte, 40))})
	enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Critical, Payload: bytes.NewReader(make([]byte, 50))})
	// 60 bytes needs 50 freed; only 40 bytes are evictable: fail, evict nothing.
	_, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Priority: edgesync.High, Payload: bytes.NewReader(make([]byte, 60))})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	if s, _ := o.Stats(); s.Total.Ops != 2 || s.Drops[ReasonCapacity] != 0 {
		t.Fatalf("stats after failed eviction: %+v", s)
	}
}

func TestSupersede(t *testing.T) {
	o := openT(t, tempPath(t), Options{})
	s1 := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp, Payload: strings.NewReader("1")})
	ev := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.EventOp})
	other := enq(t, o, NewOp{Endpoint: "f", Key: "temp", Kind: edgesync.StateOp})
	s2 := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp, Payload: strings.NewReader("22")})
	dr := <-o.Drops()
	if dr.ID != s1.ID || dr.Reason != ReasonSuperseded {
		t.Fatalf("drop = %+v, want s1 superseded", dr)
	}
	// A leased state op is being sent: it is not superseded.
	if l, _ := o.Lease("e", 10); !slices.Equal(ids(l), []edgesync.OpID{ev.ID, s2.ID}) {
		t.Fatalf("lease = %v", ids(l))
	}
	s3 := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp})
	if _, err := o.Get(s2.ID); err != nil {
		t.Fatalf("leased s2 was dropped: %v", err)
	}
	// Released, s2 and s3 both wait; s4 supersedes both.
	_ = o.Release(s2.ID)
	s4 := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp})
	got := []edgesync.OpID{(<-o.Drops()).ID, (<-o.Drops()).ID}
	if !slices.Equal(got, []edgesync.OpID{s2.ID, s3.ID}) {
		t.Fatalf("superseded %v, want s2, s3", got)
	}
	for _, id := range []edgesync.OpID{ev.ID, other.ID, s4.ID} {
		if _, err := o.Get(id); err != nil {
			t.Fatalf("op %s gone: %v", id, err)
		}
	}
	if s, _ := o.Stats(); s.Drops[ReasonSuperseded] != 3 {
		t.Fatalf("superseded count %d, want 3", s.Drops[ReasonSuperseded])
	}
}

func TestTTLAndPurge(t *testing.T) {
	clk := newClock()
	var ttl [edgesync.NumPriorities]time.Duration
	ttl[edgesync.Analytics] = time.Hour
	path := tempPath(t)
	o := openT(t, path, Options{Now: clk.Now, DefaultTTL: ttl})
	a := enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Analytics})
	b := enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Normal, TTL: time.Minute})
	c := enq(t, o, NewOp{Endpoint: "e", Priority: edgesync.Normal})
	if !a.ExpiresAt.Equal(clk.Now().Add(time.Hour)) || !c.ExpiresAt.IsZero() {
		t.Fatalf("expiry a=%v c=%v", a.ExpiresAt, c.ExpiresAt)
	}
	clk.Advance(time.Minute)
	// Expired ops are not leased even before they are purged.
	if l, _ := o.Lease("e", 10); !slices.Equal(ids(l), []edgesync.OpID{c.ID, a.ID}) {
		t.Fatalf("lease = %v", ids(l))
	}
	drops, err := o.PurgeExpired(clk.Now())
	if err != nil || len(drops) != 1 || drops[0].ID != b.ID || drops[0].Reason != ReasonExpired {
		t.Fatalf("purge = %+v, %v", drops, err)
	}
	if d := <-o.Drops(); d.ID != b.ID {
		t.Fatalf("Drops channel got %s", d.ID)
	}
	// Expiry survives a reopen; leased ops expire too.
	_ = o.Close()
	o = openT(t, path, Options{Now: clk.Now})
	drops, _ = o.PurgeExpired(clk.Now().Add(time.Hour))
	if len(drops) != 1 || drops[0].ID != a.ID {
		t.Fatalf("purge after reopen = %+v", drops)
	}
	if s, _ := o.Stats(); s.Total.Ops != 1 || s.OldestAge != time.Minute {
		t.Fatalf("stats = %+v", s)
	}
	clk.Advance(time.Second)
	if s, _ := o.Stats(); s.OldestAge != time.Minute+time.Second || !s.Oldest.Equal(c.EnqueuedAt) {
		t.Fatalf("oldest age %v", s.OldestAge)
	}
}

func TestMarkSummarySent(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	op := enq(t, o, NewOp{Endpoint: "e", Summary: []byte("hdr"), Payload: strings.NewReader("body")})
	if err := o.MarkSummarySent(op.ID); err != nil {
		t.Fatal(err)
	}
	_ = o.Close()
	o = openT(t, path, Options{})
	got, err := o.Get(op.ID)
	if err != nil || !got.SummarySent || string(got.Summary) != "hdr" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if string(readAll(t, o, op.ID)) != "body" {
		t.Fatal("payload changed")
	}
	_ = o.Ack(op.ID)
	if err := o.MarkSummarySent(op.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkSummarySent of acked op: %v, want ErrNotFound", err)
	}
}

func TestBadInput(t *testing.T) {
	o := openT(t, tempPath(t), Options{MaxOpBytes: 10, chunkSize: 4, stageChunks: 1})
	ctx := context.Background()
	cases := []struct {
		name string
		op   NewOp
		want error
		text string
	}{
		{"no endpoint", NewOp{}, ErrInvalid, "endpoint"},
		{"long endpoint", NewOp{Endpoint: strings.Repeat("e", 256)}, ErrInvalid, "endpoint"},
		{"long key", NewOp{Endpoint: "e", Key: strings.Repeat("k", 1025)}, ErrInvalid, "key"},
		{"priority", NewOp{Endpoint: "e", Priority: 6}, ErrInvalid, "priority"},
		{"kind", NewOp{Endpoint: "e", Kind: 3}, ErrInvalid, "kind"},
		{"state without key", NewOp{Endpoint: "e", Kind: edgesync.StateOp}, ErrInvalid, "key"},
		{"ttl", NewOp{Endpoint: "e", TTL: -1}, ErrInvalid, "ttl"},
		{"summary", NewOp{Endpoint: "e", Summary: make([]byte, MaxSummaryLen+1)}, ErrInvalid, "summary"},
		{"too large", NewOp{Endpoint: "e", Payload: bytes.NewReader(make([]byte, 11))}, ErrTooLarge, "10 bytes"},
		{"reader error", NewOp{Endpoint: "e", Payload: io.MultiReader(bytes.NewReader(make([]byte, 6)), iotestErr{})}, errBoom, "read payload"},
		{"stuck reader", NewOp{Endpoint: "e", Payload: stuckReader{}}, io.ErrNoProgress, "read payload"},
	}
	for _, c := range cases {
		_, err := o.Enqueue(ctx, c.op)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.name, err, c.want, c.text)
		}
	}
	if _, err := o.Lease("e", -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Lease(-1): %v", err)
	}
	if _, err := o.Lease("e", 1, 9); !errors.Is(err, ErrInvalid) {
		t.Errorf("Lease(prio 9): %v", err)
	}
	if _, err := o.List("e", 7, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("List(prio 7): %v", err)
	}
	// Failed enqueues left nothing behind, not even staged chunks.
	if s, _ := o.Stats(); s.Total.Ops != 0 {
		t.Fatalf("stats after failures: %+v", s)
	}
	if n := countBucket(t, o, bucketChunks) + countBucket(t, o, bucketPending); n != 0 {
		t.Fatalf("%d chunk/pending keys left after failed enqueues", n)
	}
	if _, err := Open(tempPath(t), Options{MaxOps: -1}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "MaxOps") {
		t.Fatalf("Open with MaxOps -1: %v", err)
	}
}

var errBoom = errors.New("boom")

type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errBoom }

func TestContextCancelStopsLargeEnqueue(t *testing.T) {
	o := openT(t, tempPath(t), Options{chunkSize: 16, stageChunks: 1})
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{n: 100, cancel: cancel}
	_, err := o.Enqueue(ctx, NewOp{Endpoint: "e", Payload: r})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := countBucket(t, o, bucketChunks) + countBucket(t, o, bucketPending); n != 0 {
		t.Fatalf("%d chunk/pending keys left after cancelled enqueue", n)
	}
}

// cancelAfter yields bytes forever and cancels after n reads.
type cancelAfter struct {
	n      int
	cancel func()
}

func (c *cancelAfter) Read(b []byte) (int, error) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return len(b), nil
}

func TestClose(t *testing.T) {
	o := openT(t, tempPath(t), Options{})
	op := enq(t, o, NewOp{Endpoint: "e", Payload: strings.NewReader("data")})
	p, _ := o.OpenPayload(op.ID)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-o.Drops(); ok {
		t.Fatal("Drops channel open after Close")
	}
	checks := map[string]error{"close": o.Close()}
	_, checks["enqueue"] = o.Enqueue(context.Background(), NewOp{Endpoint: "e"})
	_, checks["lease"] = o.Lease("e", 1)
	checks["ack"] = o.Ack(op.ID)
	checks["release"] = o.Release(op.ID)
	checks["mark"] = o.MarkSummarySent(op.ID)
	_, checks["purge"] = o.PurgeExpired(time.Now())
	_, checks["stats"] = o.Stats()
	_, checks["list"] = o.List("e", 0, 1)
	_, checks["get"] = o.Get(op.ID)
	_, checks["openpayload"] = o.OpenPayload(op.ID)
	_, checks["readat"] = p.ReadAt(make([]byte, 1), 0)
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestDropsOverflowNeverBlocks(t *testing.T) {
	o := openT(t, tempPath(t), Options{DropBuffer: 2})
	for range 5 {
		enq(t, o, NewOp{Endpoint: "e", Key: "k", Kind: edgesync.StateOp})
	}
	s, _ := o.Stats()
	if s.Drops[ReasonSuperseded] != 4 || s.DropsUnreported != 2 || len(o.Drops()) != 2 {
		t.Fatalf("drops %v unreported %d buffered %d", s.Drops, s.DropsUnreported, len(o.Drops()))
	}
}

func TestLockedFileTimesOut(t *testing.T) {
	path := tempPath(t)
	openT(t, path, Options{})
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("second Open took %v", time.Since(start))
	}
}

func TestConcurrentProducersAndSender(t *testing.T) {
	o := openT(t, tempPath(t), Options{chunkSize: 512, stageChunks: 2})
	const producers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	enqueued := make(chan edgesync.OpID, producers*each)
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				data := payloadOf(byte(p), (i*97)%3000)
				op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Key: fmt.Sprint(p, "/", i%3),
					Kind: edgesync.OpKinds()[i%2], Priority: edgesync.Priority(i % edgesync.NumPriorities), Payload: bytes.NewReader(data)})
				if err != nil {
					errs <- err
					return
				}
				enqueued <- op.ID
			}
		})
	}
	go func() { wg.Wait(); close(enqueued) }()

	// The sender wakes on every enqueue; it also marks summaries, releases
	// some leases and reads stats, so the race detector sees every path.
	acked, superseded := 0, 0
	send := func() {
		ops, err := o.Lease("e", 7)
		if err != nil {
			t.Fatal(err)
		}
		for i, op := range ops {
			p, err := o.OpenPayload(op.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, io.NewSectionReader(p, 0, p.Size())); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if err := o.MarkSummarySent(op.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(ops) > 1 {
			_ = o.Release(ops[len(ops)-1].ID)
			ops = ops[:len(ops)-1]
		}
		if err := o.Ack(ids(ops)...); err != nil {
			t.Fatal(err)
		}
		acked += len(ops)
		if _, err := o.Stats(); err != nil {
			t.Fatal(err)
		}
	}
	for range enqueued {
		send()
	}
	for range producers * each { // bounded drain of what is left
		if s, _ := o.Stats(); s.Total.Ops == 0 {
			break
		}
		send()
	}
	close(errs)
	for err := range errs {
		t.Fatalf("producer: %v", err)
	}
	for range len(o.Drops()) {
		if d := <-o.Drops(); d.Reason == ReasonSuperseded {
			superseded++
		}
	}
	s, _ := o.Stats()
	if s.Total.Ops != 0 || s.Total.Bytes != 0 {
		t.Fatalf("outbox not empty after draining: %+v", s)
	}
	if acked+superseded != producers*each || uint64(superseded) != s.Drops[ReasonSuperseded] {
		t.Fatalf("acked %d + superseded %d != %d enqueued (stats %v)", acked, superseded, producers*each, s.Drops)
	}
}

// TestCloseWaitsForEnqueues closes the outbox while producers run: every
// Enqueue that returned nil must be in the file, every later one ErrClosed.
func TestCloseWaitsForEnqueues(t *testing.T) {
	path := tempPath(t)
	o, err := Open(path, Options{chunkSize: 256, stageChunks: 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stored []edgesync.OpID
	started := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Payload: bytes.NewReader(payloadOf(byte(p), 1000))})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				mu.Lock()
				stored = append(stored, op.ID)
				mu.Unlock()
				if i == 0 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	checkFile(t, path)
	o = openT(t, path, Options{})
	for _, id := range stored {
		if _, err := o.Get(id); err != nil {
			t.Fatalf("op %s returned nil before Close but is missing: %v", id, err)
		}
	}
	if s, _ := o.Stats(); s.Total.Ops != len(stored) {
		t.Fatalf("%d ops stored, %d returned nil", s.Total.Ops, len(stored))
	}
	if n := countBucket(t, o, bucketPending); n != 0 {
		t.Fatalf("%d pending markers left", n)
	}
}

func countBucket(t testing.TB, o *Outbox, name []byte) int {
	t.Helper()
	n := 0
	_ = o.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(name).Stats().KeyN
		return nil
	})
	return n
}
