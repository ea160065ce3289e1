package agent

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// serveCore runs a core with tlsFiles' certificate on pc until the test
// ends or the returned stop.
func serveCore(t *testing.T, p *testutil.PKI, cert, key string, pc net.PacketConn) (stop func()) {
	t.Helper()
	store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := pki.ServerTLSConfig(p.CAFile, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := core.NewServer(core.ServerConfig{Name: "core", TLS: tlsConf, Store: store, Logger: testutil.Logger(t, "core")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), pc) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		pc.Close() // first: the core dies silently, nothing more goes out
		if err := srv.Close(); err != nil {
			t.Errorf("core Close: %v", err)
		}
		<-done
		store.Close()
	}
	t.Cleanup(stop)
	return stop
}

// putCritical enqueues a critical event op, its key as its data, and
// waits up to d for the outbox to be empty: the op at the core (what).
func putCritical(t *testing.T, a *Agent, key string, d time.Duration, what string) {
	t.Helper()
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Kind: edgesync.EventOp, Priority: edgesync.Critical,
		Payload: bytes.NewReader([]byte(key))})
	testutil.WaitFor(t, d, what, func() bool { return outboxEmpty(a) })
}

// TestWatchdogRedialsADeadConnection: the core behind the agent's
// connection dies without a word and a core with another TLS key (whose
// stateless resets the agent cannot trust) takes its address. The agent's
// pings go unanswered while a new connection would be answered: the
// watchdog finds that out and goes on with a new connection, and a
// critical op reaches the new core long before QUIC's 45 s idle timeout,
// with the reason in last_error.
func TestWatchdogRedialsADeadConnection(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	pc1, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := pc1.LocalAddr().(*net.UDPAddr)
	stop1 := serveCore(t, p, p.CoreCert, p.CoreKey, pc1)
	a := startAgent(t, p, coretest.AgentConfig(t, p, addr.String()), Options{})
	putCritical(t, a, "alarms/1", 15*time.Second, "the first op at the core")
	testutil.WaitFor(t, 15*time.Second, "a measured link", func() bool {
		st, err := a.Status("core")
		return err == nil && st.Measured != edgesync.Unknown
	})

	stop1()
	// The new core: same address, same CA, a new key.
	cert, key := filepath.Join(t.TempDir(), "core2.pem"), filepath.Join(t.TempDir(), "core2-key.pem")
	c2, err := p.CA.Issue(testutil.CoreName, true, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteCert(c2, cert, key, false); err != nil {
		t.Fatal(err)
	}
	pc2, err := net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveCore(t, p, cert, key, pc2)
	ready := time.Now()
	// redialAfter (3 s) plus the time the monitor takes to call the link
	// down, a handshake and the op: well under the idle timeout.
	putCritical(t, a, "alarms/2", 15*time.Second, "the critical op at the new core")
	t.Logf("critical op at the new core %s after it was ready", time.Since(ready).Round(time.Millisecond))
	st := mustStatus(t, a)
	if st.LastError == nil || !strings.Contains(st.LastError.Error, "no answer on the connection") {
		t.Fatalf("last_error %+v: want the watchdog's reason", st.LastError)
	}
}

// TestWatchdogFailsOverFromASilentCore: the core at the first of two
// addresses dies without a word (SIGKILL, a power cut). Its address
// answers nothing, so a new connection there fails too; the watchdog
// then tries the other address, and a critical op reaches the second core
// long before QUIC's 45 s idle timeout, with the move and its reason in
// status.
func TestWatchdogFailsOverFromASilentCore(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	listen := func() *net.UDPConn {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	pc1, pc2 := listen(), listen()
	a1, a2 := pc1.LocalAddr().String(), pc2.LocalAddr().String()
	stop1 := serveCore(t, p, p.CoreCert, p.CoreKey, pc1)
	serveCore(t, p, p.CoreCert, p.CoreKey, pc2)
	cfg := coretest.AgentConfig(t, p, a1)
	cfg.Endpoints[0].Addresses = []string{a1, a2}
	a := startAgent(t, p, cfg, Options{})
	putCritical(t, a, "alarms/1", 15*time.Second, "the first op at the first core")

	stop1() // silent: no CONNECTION_CLOSE, and nothing listens on a1 any more
	killed := time.Now()
	// redialAfter (3 s), the monitor calling the link down, a failed
	// trial dial of a1 (5 s) and a handshake with the second core: well
	// under the 45 s idle timeout.
	putCritical(t, a, "alarms/2", 25*time.Second, "the critical op at the second core")
	t.Logf("critical op at the second core %s after the first died", time.Since(killed).Round(time.Millisecond))
	st := mustStatus(t, a)
	if st.Address != a2 || !strings.Contains(st.AddressChoice.Reason, "no answer") {
		t.Fatalf("address %s (%q): want %s, moved because the first core did not answer", st.Address, st.AddressChoice.Reason, a2)
	}
}
