package coretest

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// Core is a running core on loopback.
type Core struct {
	Server *core.Server
	Store  *core.Store
	Addr   *net.UDPAddr

	stop func()
}

// Start runs a core named "core" with p's core certificate on a loopback
// UDP port, storing into a fresh store; mod, if not nil, changes the
// server's config first. The core stops when tb ends, and Serve's error
// fails tb.
func Start(tb testing.TB, p *testutil.PKI, mod func(*core.ServerConfig)) *Core {
	tb.Helper()
	return StartAt(tb, p, "127.0.0.1:0", mod)
}

// StartAt is Start on the UDP address addr: "127.0.0.1:0" for a free
// port, or the address of a core stopped before, to start it again.
func StartAt(tb testing.TB, p *testutil.PKI, addr string, mod func(*core.ServerConfig)) *Core {
	tb.Helper()
	return startAt(tb, p, addr, filepath.Join(tb.TempDir(), "core.db"), mod)
}

// StartConn is Start on pc, a UDP socket the test holds
// (testutil.UDPSocket): stopped, the core is started again on pc, and no
// other process can have taken its port meanwhile. pc stays the caller's.
func StartConn(tb testing.TB, p *testutil.PKI, pc net.PacketConn, mod func(*core.ServerConfig)) *Core {
	tb.Helper()
	return start(tb, p, filepath.Join(tb.TempDir(), "core.db"), mod, func(srv *core.Server) (*net.UDPAddr, func()) {
		return ServeConn(tb, srv, pc)
	})
}

// StartOn is Start with the store's file at path, on a file system the
// test controls (a small tmpfs it fills: testutil.Tmpfs).
func StartOn(tb testing.TB, p *testutil.PKI, path string, mod func(*core.ServerConfig)) *Core {
	tb.Helper()
	return startAt(tb, p, "127.0.0.1:0", path, mod)
}

func startAt(tb testing.TB, p *testutil.PKI, addr, path string, mod func(*core.ServerConfig)) *Core {
	tb.Helper()
	return start(tb, p, path, mod, func(srv *core.Server) (*net.UDPAddr, func()) { return Serve(tb, srv, addr) })
}

// start opens a store at path and a server on it, which serve runs.
func start(tb testing.TB, p *testutil.PKI, path string, mod func(*core.ServerConfig), serve func(*core.Server) (*net.UDPAddr, func())) *Core {
	tb.Helper()
	store, err := core.Open(path, core.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := core.ServerConfig{Name: "core", TLS: p.ServerTLS(tb), Store: store, Logger: testutil.Logger(tb, "core")}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := core.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ua, stop := serve(srv)
	c := &Core{Server: srv, Store: store, Addr: ua}
	c.stop = sync.OnceFunc(func() {
		stop()
		store.Close()
	})
	tb.Cleanup(c.stop)
	return c
}

// Serve runs srv on the UDP address addr ("127.0.0.1:0" for a free port)
// until tb ends or stop is called, and returns the address it serves on.
// stop closes srv and waits for Serve, failing tb on an error of either;
// the store stays the caller's.
func Serve(tb testing.TB, srv *core.Server, addr string) (_ *net.UDPAddr, stop func()) {
	tb.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		tb.Fatal(err)
	}
	ua, end := ServeConn(tb, srv, pc)
	stop = sync.OnceFunc(func() {
		end()
		pc.Close()
	})
	tb.Cleanup(stop)
	return ua, stop
}

// ServeConn is Serve on pc, a UDP socket that stays the caller's after
// stop (testutil.UDPSocket), for a core started again on it.
func ServeConn(tb testing.TB, srv *core.Server, pc net.PacketConn) (_ *net.UDPAddr, stop func()) {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), pc) }()
	stop = sync.OnceFunc(func() {
		if err := testutil.Within(tb, "the core's Close", srv.Close); err != nil {
			tb.Errorf("core Close: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("core Serve: %v", err)
		}
	})
	tb.Cleanup(stop)
	return pc.LocalAddr().(*net.UDPAddr), stop
}

// Stop closes the core before tb ends, as a core process does on SIGTERM,
// and frees its address (a socket given to StartConn stays open); once
// stopped, Stop does nothing.
func (c *Core) Stop() { c.stop() }

// AgentConfig returns a valid config of p's agent, with its data in a
// fresh directory and one endpoint "core" at coreAddr. Until a monitor
// classifies the link, the class is unknown and ordinary data waits 30 s
// between batches; the config sends it at once.
func AgentConfig(tb testing.TB, p *testutil.PKI, coreAddr string) config.Agent {
	cfg := config.DefaultAgent()
	cfg.Name = p.AgentName
	cfg.DataDir = tb.TempDir()
	cfg.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	fast := 50 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	return cfg
}

// Data reads the current version of an agent's key at the core.
func (c *Core) Data(agent, key string) ([]byte, error) {
	_, obj, err := c.Store.Current(agent, key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
}
