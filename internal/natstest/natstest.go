// Package natstest runs real NATS servers with JetStream inside a test
// process: one server, or a cluster of several whose nodes a test can
// stop and start again, and connects a test's own client to them
// (Connect). Storage is in the test's temporary directory and every port
// is chosen at random. Tests only.
package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// readyTimeout bounds the wait for a server to accept clients and for a
// cluster to elect its JetStream meta leader.
const readyTimeout = 30 * time.Second

// Server is one embedded NATS server with JetStream.
type Server struct {
	*server.Server
	opts *server.Options
}

// URL is the server's client URL.
func (s *Server) URL() string { return s.ClientURL() }

// Run starts a single NATS server with JetStream on a random port, storing
// in tb.TempDir(); tb's cleanup shuts it down. mods change its options
// first (authentication, TLS).
func Run(tb testing.TB, mods ...func(*server.Options)) *Server {
	tb.Helper()
	opts := baseOptions(tb, "n0")
	for _, mod := range mods {
		mod(opts)
	}
	s := start(tb, opts)
	tb.Cleanup(func() { stop(s.Server) })
	return s
}

// Cluster is several NATS servers with JetStream routed to each other.
type Cluster struct {
	tb    testing.TB
	Nodes []*Server // nil where a node is stopped
	opts  []*server.Options
}

// RunCluster starts n servers in one cluster and waits until JetStream
// has a meta leader; tb's cleanup shuts them down.
func RunCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, Nodes: make([]*Server, n), opts: make([]*server.Options, n)}
	ports := freePorts(tb, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range n {
		o := baseOptions(tb, fmt.Sprintf("n%d", i))
		o.Cluster = server.ClusterOpts{Name: "edge-sync-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.opts[i] = o
	}
	tb.Cleanup(func() {
		for _, s := range c.Nodes {
			if s != nil {
				stop(s.Server)
			}
		}
	})
	for i := range n {
		c.Nodes[i] = start(tb, c.opts[i])
	}
	c.waitLeader()
	return c
}

// URLs lists the client URLs of the running nodes.
func (c *Cluster) URLs() []string {
	var out []string
	for _, s := range c.Nodes {
		if s != nil {
			out = append(out, s.URL())
		}
	}
	return out
}

// Stop shuts node i down: to the rest of the cluster, a node failure.
func (c *Cluster) Stop(i int) {
	if s := c.Nodes[i]; s != nil {
		stop(s.Server)
		c.Nodes[i] = nil
	}
}

// Start starts node i again on its storage, and waits for a meta leader.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	if c.Nodes[i] != nil {
		return
	}
	o := c.opts[i].Clone()
	o.Port = c.opts[i].Port // the port it had, so that clients find it again
	c.Nodes[i] = start(c.tb, o)
	c.waitLeader()
}

// waitLeader waits for a meta leader that sees every running node online
// with JetStream: a leader alone may still hold a peer for offline, and
// then refuses to place a replicated stream ("no suitable peers for
// placement, peer offline", seen under -race in CI).
func (c *Cluster) waitLeader() {
	c.tb.Helper()
	running := 0
	for _, s := range c.Nodes {
		if s != nil {
			running++
		}
	}
	testutil.WaitFor(c.tb, readyTimeout, fmt.Sprintf("a JetStream meta leader that sees all %d running nodes of the NATS cluster", running), func() bool {
		for _, s := range c.Nodes {
			if s != nil && s.JetStreamIsLeader() {
				return len(s.JetStreamClusterPeers()) >= running
			}
		}
		return false
	})
}

func baseOptions(tb testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   filepath.Join(tb.TempDir(), "js-"+name),
		NoLog:      true,
		NoSigs:     true,
	}
}

func start(tb testing.TB, opts *server.Options) *Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		stop(s)
		tb.Fatalf("natstest: server %s not ready within %v", opts.ServerName, readyTimeout)
	}
	if opts.Port == server.RANDOM_PORT {
		// Keep the port chosen, so that a restart (Cluster.Start) reuses it.
		opts.Port = s.Addr().(*net.TCPAddr).Port
	}
	return &Server{Server: s, opts: opts}
}

func stop(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// freePorts returns n TCP ports free at the time of asking.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
