package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// fixture is a real store with a few ops of agent "site-1", and the admin
// API serving it on a socket.
type fixture struct {
	store     *core.Store
	storePath string
	socket    string
	srv       *Server
	served    chan error
	data      map[string][]byte // key → current data
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := testutil.ShortTempDir(t) // a socket path lives here
	f := &fixture{storePath: filepath.Join(dir, "core.db"), socket: filepath.Join(dir, "core.sock"), data: map[string][]byte{}}
	var err error
	f.store, err = core.Open(f.storePath, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	ops := []struct {
		kind edgesync.OpKind
		key  string
		data string
	}{
		{edgesync.StateOp, "sensors/pump-1", "4.1 bar"},
		{edgesync.StateOp, "sensors/pump-2", "3.9 bar"},
		{edgesync.StateOp, "sensors/pump-1", "4.2 bar"},
		{edgesync.EventOp, "alarms", "pump-3 overpressure"},
		{edgesync.EventOp, "alarms", "pump-3 ok"},
		{edgesync.StateOp, "config/site", "{}"},
	}
	for i, op := range ops {
		var id edgesync.OpID
		id[0], id[15] = 1, byte(i+1)
		b := []byte(op.data)
		h := core.PartialHeader{OpID: id, Key: op.key, Kind: op.kind, Priority: edgesync.High, Size: int64(len(b)), Hash: sha256.Sum256(b)}
		if _, err := f.store.Apply("site-1", h, bytes.NewReader(b)); err != nil {
			t.Fatalf("apply %s: %v", op.key, err)
		}
		if op.kind == edgesync.StateOp {
			f.data[op.key] = b
		}
	}
	return f
}

// newServer is an admin server of f's store on f's socket, not serving.
func (f *fixture) newServer(t *testing.T) *Server {
	t.Helper()
	srv, err := NewServer(f.socket, f.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// serve starts the admin server; the test's cleanup stops it.
func (f *fixture) serve(t *testing.T) {
	t.Helper()
	srv := f.newServer(t)
	f.srv, f.served = srv, make(chan error, 1)
	go func() { f.served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() { f.stop(t) })
}

// stop closes the server and waits for Serve to return.
func (f *fixture) stop(t *testing.T) {
	t.Helper()
	if f.srv == nil {
		return
	}
	if err := f.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := testutil.Returned(t, f.served, 10*time.Second, "Serve to return after Close"); err != nil {
		t.Errorf("Serve: %v", err)
	}
	f.srv = nil
}

// views reads everything a Reader offers about site-1.
func views(t *testing.T, r Reader) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	add := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%T %s: %v", r, name, err)
		}
		out[name] = v
	}
	agents, err := r.Agents(ctx)
	add("agents", agents, err)
	keys, err := r.Keys(ctx, "site-1", "sensors/", 0)
	add("keys", keys, err)
	one, err := r.Keys(ctx, "site-1", "", 1)
	add("keys limit 1", one, err)
	evs, err := r.Events(ctx, "site-1", 2, 10)
	add("events from 2", evs, err)
	sums, err := r.Summaries(ctx, "site-1", "", 0)
	add("summaries", sums, err)
	st, err := r.Stats(ctx)
	add("stats", st, err)
	var b bytes.Buffer
	err = r.Get(ctx, "site-1", "sensors/pump-1", &b)
	add("get", b.String(), err)
	return out
}

// TestClientAndStoreAgree reads the same store through the socket and
// directly: the answers are equal, and are what was stored.
func TestClientAndStoreAgree(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	fi, err := os.Stat(f.socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: mode %v, %v; want 0600", fi.Mode(), err)
	}
	c := NewClient(f.socket)
	defer c.Close()
	remote, local := views(t, c), views(t, StoreReader{Store: f.store})
	if a, b := asJSON(t, remote), asJSON(t, local); a != b {
		t.Fatalf("the socket and the store disagree:\nsocket %s\nstore  %s", a, b)
	}
	keys := remote["keys"].([]VersionInfo)
	if len(keys) != 2 || keys[0].Key != "sensors/pump-1" || keys[0].Version != 2 || keys[0].SHA256 != sha(f.data["sensors/pump-1"]) {
		t.Fatalf("keys under sensors/: %+v", keys)
	}
	if len(remote["keys limit 1"].([]VersionInfo)) != 1 {
		t.Fatalf("limit 1 gave %+v", remote["keys limit 1"])
	}
	if evs := remote["events from 2"].([]EventInfo); len(evs) != 1 || evs[0].Seq != 2 || evs[0].Key != "alarms" {
		t.Fatalf("events from 2: %+v", evs)
	}
	if got := remote["get"].(string); got != "4.2 bar" {
		t.Fatalf("get sensors/pump-1 = %q, want the newest version", got)
	}
}

// asJSON is how the API's answers compare: as the JSON they travel as.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// TestErrors: what does not exist is core.ErrNotFound from both readers, a
// malformed parameter is 400, and nothing at the socket is ErrNoCore.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := NewClient(f.socket)
	defer c.Close()
	if _, err := c.Agents(ctx); !errors.Is(err, ErrNoCore) {
		t.Fatalf("no socket: want ErrNoCore, got %v", err)
	}
	f.serve(t)
	for _, r := range []Reader{c, StoreReader{Store: f.store}} {
		if _, err := r.Keys(ctx, "mars", "", 0); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("%T: unknown agent: want core.ErrNotFound, got %v", r, err)
		}
		if err := r.Get(ctx, "site-1", "nope", new(bytes.Buffer)); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("%T: unknown key: want core.ErrNotFound, got %v", r, err)
		}
	}
	var e *Error
	if _, err := c.Events(ctx, "mars", 1, 1); !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Message == "" {
		t.Fatalf("unknown agent over the socket: %#v", err)
	}
	for _, path := range []string{"/v1/events?agent=site-1&from=soon", "/v1/keys?agent=site-1&limit=-3", "/v1/summaries?agent=site-1&limit=x"} {
		if status, _ := f.get(t, path); status != http.StatusBadRequest {
			t.Errorf("GET %s: HTTP %d, want 400", path, status)
		}
	}
}

// get sends GET path to the admin socket with a plain HTTP client and
// returns the status and the body.
func (f *fixture) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.socket)
	}}}
	resp, err := hc.Get("http://core" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, b
}

// TestSocketOrStore reads through the socket while the core serves (the
// store file is locked by the open store, so only the socket can answer),
// and from the file once the core has stopped and closed its store.
func TestSocketOrStore(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	r := NewSocketOrStore(f.socket, f.storePath)
	defer r.Close()
	running := views(t, r)
	want := views(t, StoreReader{Store: f.store})

	f.stop(t)
	if _, err := os.Lstat(f.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := views(t, r)
	if a, b, c := asJSON(t, running), asJSON(t, stopped), asJSON(t, want); a != c || b != c {
		t.Fatalf("answers differ:\nrunning %s\nstopped %s\nwant    %s", a, b, c)
	}

	// A stale socket file (nothing accepts) counts as no core.
	testutil.StaleSocket(t, f.socket)
	if got := asJSON(t, views(t, r)); got != asJSON(t, want) {
		t.Fatalf("with a stale socket: %s", got)
	}

	// Neither a core nor a store: the error says both.
	os.Remove(f.socket)
	os.Remove(f.storePath)
	if _, err := r.Agents(context.Background()); !errors.Is(err, ErrNoCore) {
		t.Fatalf("no core and no store: want ErrNoCore, got %v", err)
	}
}

// TestCloseBeforeServe: a server closed before it served removes its
// socket, and Serve then refuses to start.
func TestCloseBeforeServe(t *testing.T) {
	f := newFixture(t)
	srv := f.newServer(t)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Lstat(f.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}
	if err := srv.Serve(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: want net.ErrClosed, got %v", err)
	}
}

// TestCloseWaitsForServe: Close of a serving server returns once Serve has
// stopped and removed its socket; a second Serve, and one after Close,
// are refused (docs/architecture.md#lifecycle).
func TestCloseWaitsForServe(t *testing.T) {
	f := newFixture(t)
	srv := f.newServer(t)
	serve := func() error { return srv.Serve(context.Background()) }
	done := make(chan error, 1)
	go func() { done <- serve() }()
	c := NewClient(f.socket)
	defer c.Close()
	testutil.WaitFor(t, 10*time.Second, "the admin API to answer", func() bool {
		_, err := c.Agents(context.Background())
		return err == nil
	})
	if err := testutil.Within(t, "a second Serve", serve); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a second Serve: want net.ErrClosed, got %v", err)
	}
	testutil.CheckClose(t, srv.Close, serve, net.ErrClosed)
	if _, err := os.Lstat(f.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close returned before Serve removed the socket: %v", err)
	}
	if err := testutil.Within(t, "Serve", func() error { return <-done }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestLiveAgents: a real core and agent; the admin API of the running
// core answers each agent's figures (connected, last seen, ops and bytes
// received), as /metrics does, and shows the agent gone once it stops.
// An admin API serving a store alone answers 404.
func TestLiveAgents(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	socket := filepath.Join(testutil.ShortTempDir(t), "core.sock")
	srv, err := NewServer(socket, c.Store, nil, WithLiveAgents(c.Server))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := testutil.Returned(t, served, 10*time.Second, "Serve to return after Close"); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cl := NewClient(socket)
	defer cl.Close()
	ctx := context.Background()
	live := func() core.AgentFigures {
		t.Helper()
		all, err := cl.LiveAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range all {
			if f.Agent == "site-1" {
				return f
			}
		}
		return core.AgentFigures{}
	}

	start := time.Now()
	a := agenttest.Start(t, p, coretest.AgentConfig(t, p, c.Addr.String()), agent.Options{})
	const n = 3
	var sent int64
	for i := range n {
		payload := fmt.Sprintf("pressure %d bar", i)
		sent += int64(len(payload))
		if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("sensors/p%d", i), Priority: edgesync.High, Payload: strings.NewReader(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the core to acknowledge 3 ops of site-1", func() bool { return live().Ops >= n })
	f := live()
	if f.Connections != 1 || f.Ops != n || f.Bytes != sent || f.LastSeen.Before(start) || f.LastOp.Before(start) {
		t.Fatalf("live figures of site-1 after %d ops of %d bytes: %+v", n, sent, f)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 15*time.Second, "site-1 shown disconnected", func() bool { return live().Connections == 0 })
	if f := live(); f.Ops != n {
		t.Errorf("ops received after the agent left: %d, want %d kept", f.Ops, n)
	}

	// The same API on a store alone has no live figures.
	fx := newFixture(t)
	fx.serve(t)
	sc := NewClient(fx.socket)
	defer sc.Close()
	if _, err := sc.LiveAgents(ctx); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("live figures from a store-only admin API: want core.ErrNotFound, got %v", err)
	}
}
