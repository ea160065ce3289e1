package lane

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func opID(i byte) [16]byte { return [16]byte{0: 0xed, 15: i} }

// TestRoundTripLossy sends several ops at once, both directions, through a
// 20 Mbit/s, 40 ms RTT link losing 2 % each way: every byte arrives, in
// order per op, and Send returns only after delivery.
func TestRoundTripLossy(t *testing.T) {
	p := newPair(t, testLink{rateBps: 20e6, rtt: 40 * time.Millisecond, loss: 0.02}.profile(), nil)
	srvCol, cliCol := newCollector(), newCollector()
	cs, ss := p.sessions(t, Config{Deliver: cliCol.deliver}, Config{Deliver: srvCol.deliver})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sizes := []int{1, 1000, 250_000, 600_000}
	payloads := make([][]byte, len(sizes))
	var wg sync.WaitGroup
	errs := make([]error, len(sizes)+1)
	for i, n := range sizes {
		payloads[i] = randomBytes(t, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cs.Send(ctx, opID(byte(i)), int64(1000*i), payloads[i], int8(i%3))
			if errs[i] == nil && !bytes.Equal(srvCol.get(opID(byte(i))), payloads[i]) {
				errs[i] = errors.New("Send returned before the data was delivered")
			}
		}()
	}
	back := randomBytes(t, 300_000)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[len(sizes)] = ss.Send(ctx, opID(99), 0, back, 0)
	}()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range sizes {
		if got := srvCol.get(opID(byte(i))); !bytes.Equal(got, payloads[i]) {
			t.Errorf("op %d: got %d bytes, want %d identical", i, len(got), len(payloads[i]))
		}
		if b := srvCol.base[opID(byte(i))]; b != int64(1000*i) {
			t.Errorf("op %d: first offset %d, want %d", i, b, 1000*i)
		}
	}
	if !bytes.Equal(cliCol.get(opID(99)), back) {
		t.Error("server→client op differs")
	}
	if len(srvCol.bad)+len(cliCol.bad) > 0 {
		t.Errorf("delivery out of order: %v %v", srvCol.bad, cliCol.bad)
	}
	st := cs.Stats()
	t.Logf("client: %+v", st)
	t.Logf("server: %+v", ss.Stats())
	if st.PacketsLost == 0 || st.Retransmits == 0 {
		t.Errorf("a 2%% loss link lost nothing? lost=%d retransmits=%d", st.PacketsLost, st.Retransmits)
	}
}

// TestPriorityOvertakes starts a bulk send, then an urgent one: the urgent
// op completes first, within a few RTTs, while the bulk one is still going.
func TestPriorityOvertakes(t *testing.T) {
	const rtt = 100 * time.Millisecond
	p := newPair(t, testLink{rateBps: 4e6, rtt: rtt}.profile(), nil)
	col := newCollector()
	cs, _ := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bulk := randomBytes(t, 1_500_000)
	bulkDone := make(chan error, 1)
	go func() { bulkDone <- cs.Send(ctx, opID(1), 0, bulk, 7) }()
	testutil.WaitFor(t, 10*time.Second, "bulk transfer under way", func() bool { return cs.Stats().BytesAcked > 200_000 })

	urgent := randomBytes(t, 20_000)
	start := time.Now()
	if err := cs.Send(ctx, opID(2), 0, urgent, 0); err != nil {
		t.Fatalf("urgent send: %v", err)
	}
	lat := time.Since(start)
	select {
	case err := <-bulkDone:
		t.Fatalf("bulk send finished (%v) before the urgent one", err)
	default:
	}
	if !bytes.Equal(col.get(opID(2)), urgent) {
		t.Fatal("urgent op not delivered intact")
	}
	// 20 kB take 40 ms at 4 Mbit/s; the rest is one RTT plus the queue.
	t.Logf("urgent latency %v (RTT %v)", lat, rtt)
	if lat > 10*rtt {
		t.Errorf("urgent op took %v, want about RTT + serialisation (< %v)", lat, 10*rtt)
	}
	if err := <-bulkDone; err != nil {
		t.Fatalf("bulk send: %v", err)
	}
	if !bytes.Equal(col.get(opID(1)), bulk) {
		t.Fatal("bulk op not delivered intact")
	}
}

// TestForgedAndReplayedRejected sends straight at the server's socket: a
// packet sealed with the session's key under a packet number already used
// (a replay), a tampered packet, one under the right tag without the key,
// and ones with unknown tags. Each is counted; none delivers data.
func TestForgedAndReplayedRejected(t *testing.T) {
	p := newPair(t, linksim.Unshaped(), nil)
	col := newCollector()
	cs, ss := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := randomBytes(t, 500)
	if err := cs.Send(ctx, opID(1), 0, data, 0); err != nil {
		t.Fatal(err)
	}
	attacker, err := net.DialUDP("udp", nil, p.serverUDP.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	send := func(b []byte) {
		if _, err := attacker.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// An authentic packet carrying a new transfer, under packet number 0,
	// which the client already used: what a replay of its first packet
	// looks like to the receiver.
	frames := appendData(nil, &dataFrame{transfer: 7, hasMeta: true, id: opID(9), total: 3, data: []byte("bad")})
	send(cs.out.seal(nil, 0, frames))
	testutil.WaitFor(t, 5*time.Second, "replay counted", func() bool { return ss.Stats().Replayed == 1 })

	fresh := cs.out.seal(nil, 1<<40, frames)
	tampered := append([]byte(nil), fresh...)
	tampered[len(tampered)-20] ^= 0x40
	send(tampered)
	testutil.WaitFor(t, 5*time.Second, "tampered packet counted", func() bool { return ss.Stats().Forged == 1 })

	junk := append([]byte(nil), fresh[:headerLen]...)
	junk = append(junk, randomBytes(t, 200)...)
	send(junk)
	testutil.WaitFor(t, 5*time.Second, "keyless forgery counted", func() bool { return ss.Stats().Forged == 2 })

	otherTag := append([]byte(nil), fresh...)
	otherTag[1] ^= 0xff
	send(otherTag)
	send([]byte{KindPacket, 1, 2})
	testutil.WaitFor(t, 5*time.Second, "unknown session counted", func() bool {
		u, _ := p.server.demux.Stats()
		return u == 2
	})
	if got := col.total(); got != int64(len(data)) || col.get(opID(9)) != nil {
		t.Fatalf("delivered %d bytes (want %d), op 9 %q: a rejected packet delivered data", got, len(data), col.get(opID(9)))
	}
}

// heldSend starts sending 1 MiB of random data as op 1 over p to a
// receiver with scfg whose consumer blocks until release is closed; done
// gets Send's result and col what was delivered.
func heldSend(ctx context.Context, t *testing.T, p *pair, scfg Config) (cs, ss *Session, col *collector, release chan struct{}, data []byte, done chan error) {
	t.Helper()
	col = newCollector()
	release = make(chan struct{})
	scfg.Deliver = func(id [16]byte, off int64, d []byte) {
		<-release
		col.deliver(id, off, d)
	}
	cs, ss = p.sessions(t, Config{}, scfg)
	data = randomBytes(t, 1<<20)
	done = make(chan error, 1)
	go func() { done <- cs.Send(ctx, opID(1), 0, data, 0) }()
	return cs, ss, col, release, data, done
}

// TestBoundedReceiveMemory blocks the receiver's consumer: buffered data
// stays within MaxBufferedBytes while the sender keeps trying, and the
// transfer completes intact once the consumer resumes.
func TestBoundedReceiveMemory(t *testing.T) {
	const limit = 64 << 10
	p := newPair(t, testLink{rateBps: 20e6, rtt: 20 * time.Millisecond, loss: 0.01}.profile(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ss, col, release, data, done := heldSend(ctx, t, p, Config{MaxBufferedBytes: limit})
	testutil.WaitFor(t, 10*time.Second, "receiver full", func() bool {
		st := ss.Stats()
		if st.Buffered > limit {
			t.Fatalf("buffered %d bytes, limit %d", st.Buffered, limit)
		}
		return st.Buffered > limit-2*DefaultPacketSize
	})
	// Keep pushing for a while: the limit holds.
	for range 50 {
		if st := ss.Stats(); st.Buffered > limit {
			t.Fatalf("buffered %d bytes, limit %d", st.Buffered, limit)
		}
		time.Sleep(10 * time.Millisecond) // sampling interval, not synchronisation
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("send: %v", err)
	}
	if !bytes.Equal(col.get(opID(1)), data) {
		t.Fatal("data differs after back-pressure")
	}
	t.Logf("server: %+v", ss.Stats())
}

// TestCancelAndClose: a cancelled Send returns its context's error and
// frees its slot at both ends; Close fails pending Sends with ErrClosed.
func TestCancelAndClose(t *testing.T) {
	p := newPair(t, testLink{rateBps: 2e6, rtt: 40 * time.Millisecond}.profile(), nil)
	col := newCollector()
	cs, ss := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cs.Send(ctx, opID(1), 0, randomBytes(t, 2<<20), 5) }()
	testutil.WaitFor(t, 10*time.Second, "transfer under way", func() bool { return cs.Stats().BytesAcked > 20_000 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled send returned %v, want context.Canceled", err)
	}
	testutil.WaitFor(t, 10*time.Second, "reset reached the receiver and slot freed", func() bool {
		ss.mu.Lock()
		open := len(ss.rcv.open)
		ss.mu.Unlock()
		return open == 0 && len(cs.slots) == 0
	})
	small := randomBytes(t, 3000)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := cs.Send(ctx2, opID(2), 0, small, 0); err != nil {
		t.Fatalf("send after cancel: %v", err)
	}
	if !bytes.Equal(col.get(opID(2)), small) {
		t.Fatal("op after cancel differs")
	}

	go func() { done <- cs.Send(context.Background(), opID(3), 0, randomBytes(t, 2<<20), 5) }()
	testutil.WaitFor(t, 10*time.Second, "second transfer under way", func() bool { return len(cs.slots) == 1 })
	cs.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("send during close returned %v, want ErrClosed", err)
	}
	if err := cs.Send(ctx2, opID(4), 0, small, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close returned %v, want ErrClosed", err)
	}
}

// TestDemuxRoutesOtherPackets: non-lane leading bytes reach their
// handler; the lane range and QUIC's range cannot be claimed.
func TestDemuxRoutesOtherPackets(t *testing.T) {
	p := newPair(t, linksim.Unshaped(), nil)
	got := make(chan []byte, 1)
	if err := p.server.demux.Handle(0x2e, 0x2e, func(b []byte, _ net.Addr) { got <- append([]byte(nil), b...) }); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]byte{{0x20, 0x20}, {0x10, 0x2d}, {0x2e, 0x40}, {0x05, 0x01}} {
		if err := p.server.demux.Handle(r[0], r[1], func([]byte, net.Addr) {}); !errors.Is(err, ErrKindRange) {
			t.Errorf("Handle(%#x, %#x) = %v, want ErrKindRange", r[0], r[1], err)
		}
	}
	if _, err := p.client.tr.WriteTo([]byte{0x2e, 7, 7}, p.relay.Addr()); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, []byte{0x2e, 7, 7}) {
			t.Fatalf("handler got %x", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("probe packet not routed to its handler")
	}
}

// deliveryRecorder counts what a session reports to Config.Delivery.
type deliveryRecorder struct {
	acked, limited atomic.Int64
}

func (d *deliveryRecorder) OnAcked(n int) { d.acked.Add(int64(n)) }
func (d *deliveryRecorder) OnAppLimited() { d.limited.Add(1) }

// The sender reports every payload byte the peer acknowledged, once, and
// the moments it is held back by something other than the link (startup,
// nothing to send), for a link monitor's passive delivery rate.
func TestDeliveryReported(t *testing.T) {
	p := newPair(t, testLink{rateBps: 20e6, rtt: 40 * time.Millisecond, loss: 0.02}.profile(), nil)
	var rec deliveryRecorder
	srvCol := newCollector()
	cs, _ := p.sessions(t, Config{Delivery: &rec}, Config{Deliver: srvCol.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(t, 400_000)
	if err := cs.Send(ctx, opID(1), 0, data, 0); err != nil {
		t.Fatal(err)
	}
	if got := rec.acked.Load(); got != int64(len(data)) {
		t.Errorf("acknowledged bytes reported: %d, want the %d sent (lost and resent ones once)", got, len(data))
	}
	if got := cs.Stats().BytesAcked; got != rec.acked.Load() {
		t.Errorf("Stats.BytesAcked %d, reported %d", got, rec.acked.Load())
	}
	if rec.limited.Load() == 0 {
		t.Error("no app-limited moment reported, though the lane started cold and ran out of data")
	}
}

// sharedBudget is a wire.Budget with a limit and a high-water mark.
type sharedBudget struct {
	mu                sync.Mutex
	used, peak, limit int
	refused           int
}

func (b *sharedBudget) Reserve(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		b.refused++
		return errors.New("over budget")
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

func (b *sharedBudget) Release(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (b *sharedBudget) state() (used, peak, refused int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak, b.refused
}

// TestReceiveBudget holds a receiver to a budget shared with others (the
// core's memory for frames in flight), far below its own buffer: packets
// beyond it are refused and sent again, the data arrives whole, and the
// budget gets every byte back, also what is buffered when the session
// closes.
func TestReceiveBudget(t *testing.T) {
	budget := &sharedBudget{limit: 48 << 10}
	p := newPair(t, testLink{rateBps: 20e6, rtt: 20 * time.Millisecond}.profile(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, ss, col, release, data, done := heldSend(ctx, t, p, Config{Budget: budget})
	testutil.WaitFor(t, 10*time.Second, "the budget refusing packets", func() bool {
		_, _, refused := budget.state()
		return refused > 0
	})
	close(release)
	if err := <-done; err != nil {
		used, peak, refused := budget.state()
		t.Fatalf("send: %v; budget used %d peak %d refused %d; server %+v; client %+v", err, used, peak, refused, ss.Stats(), cs.Stats())
	}
	if !bytes.Equal(col.get(opID(1)), data) {
		t.Fatal("data differs after the budget held it back")
	}
	if _, peak, _ := budget.state(); peak > budget.limit {
		t.Fatalf("the receiver held %d bytes of a budget of %d", peak, budget.limit)
	}

	if used, _, _ := budget.state(); used != 0 {
		t.Fatalf("%d bytes of the budget held after everything was delivered", used)
	}

	// What is buffered when the session closes is given back too.
	p2 := newPair(t, testLink{rateBps: 20e6, rtt: 20 * time.Millisecond}.profile(), nil)
	hold := make(chan struct{})
	cs2, ss2 := p2.sessions(t, Config{}, Config{Deliver: func([16]byte, int64, []byte) { <-hold }, Budget: budget})
	go func() { _ = cs2.Send(ctx, opID(2), 0, data, 0) }() // ends with the sessions
	testutil.WaitFor(t, 10*time.Second, "data buffered in the second session", func() bool {
		used, _, _ := budget.state()
		return used > 0
	})
	close(hold)
	if err := ss2.Close(); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := budget.state(); used != 0 {
		t.Fatalf("%d bytes of the budget held after the session closed", used)
	}
}
