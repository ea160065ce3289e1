package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// agentState is what a bad request must not change.
type agentState struct {
	Ops, Leased int
	Bytes       int64
	Endpoints   []string
	Pins        map[string]string
	Overrides   string
}

func stateOf(t testing.TB, a *agent.Agent) agentState {
	t.Helper()
	st := outboxCount(t, a)
	rc := a.Config()
	ov, _ := json.Marshal(rc.Overrides)
	return agentState{Ops: st.Total.Ops, Leased: st.Leased, Bytes: st.Total.Bytes,
		Endpoints: a.Endpoints(), Pins: rc.Pins, Overrides: string(ov)}
}

// rawRequest sends a request as a client other than Client might.
func rawRequest(t testing.TB, hc *http.Client, base, method, path string, hdr map[string]string, body io.Reader, size int64) (int, Error) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var ce Error
	if res.StatusCode >= 400 {
		if err := json.Unmarshal(b, &ce); err != nil {
			t.Fatalf("%s %s: HTTP %d with a body that is not a JSON error: %q", method, path, res.StatusCode, b)
		}
	}
	return res.StatusCode, ce
}

func unixHTTP(sock string) *http.Client {
	// ExpectContinueTimeout lets oversize-body cases send "Expect:
	// 100-continue": the agent refuses from the headers and the client
	// reads the 413 instead of racing the close with its body write.
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 5 * time.Second,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

// chunked hides a reader's length so that the request is sent chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestControlBadRequestsChangeNothing sends bad requests of every kind and
// checks the status, the code, a message, and that the agent's state is
// what it was.
func TestControlBadRequestsChangeNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	a := offlineAgent(t, func(c *config.Agent) { c.Outbox.MaxOps = 2 })
	env := startControl(t, a, config.Control{MaxBodyBytes: 4096})
	ctx := context.Background()
	// One op at normal and one leased at critical, so that ack, release and
	// "outbox full" have something to act on.
	if _, err := env.c.Upload(ctx, CmdSend, UploadParams{Key: "k"}, strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := env.c.Upload(ctx, CmdQueue, UploadParams{Priority: "critical"}, strings.NewReader("alarm"), 5); err != nil {
		t.Fatal(err)
	}
	if _, body, err := env.c.Lease(ctx, NextRequest{Priorities: []string{"critical"}}); err != nil {
		t.Fatal(err)
	} else {
		body.Close()
	}
	before := stateOf(t, a)
	hc := unixHTTP(env.sock)
	defer hc.CloseIdleConnections()
	notLeased := edgesync.OpID{1}.String()
	big := bytes.Repeat([]byte("x"), 5000)
	expect100 := map[string]string{"Expect": "100-continue"}

	cases := []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         string
		raw          io.Reader
		size         int64
		status       int
		code         string
	}{
		{name: "unknown command", method: "POST", path: "/v1/transport.teleport", status: 404, code: "unknown_command"},
		{name: "not under /v1", method: "POST", path: "/transport.stats", status: 404, code: "not_found"},
		{name: "GET a command", method: "GET", path: "/v1/transport.stats", status: 405, code: "method_not_allowed"},
		{name: "POST health", method: "POST", path: "/v1/health", status: 405, code: "method_not_allowed"},
		{name: "bad priority", method: "POST", path: "/v1/transport.send?priority=urgent", body: "data", status: 400, code: "bad_request"},
		{name: "queue without priority", method: "POST", path: "/v1/transport.bandwidth.sync.queue", body: "data", status: 400, code: "bad_request"},
		{name: "bad kind", method: "POST", path: "/v1/transport.send?kind=blob", body: "data", status: 400, code: "bad_request"},
		{name: "state without key", method: "POST", path: "/v1/transport.send?kind=state", body: "data", status: 400, code: "bad_request"},
		{name: "bad ttl", method: "POST", path: "/v1/transport.send?ttl=soon", body: "data", status: 400, code: "bad_request"},
		{name: "unknown query parameter", method: "POST", path: "/v1/transport.send?prio=high", body: "data", status: 400, code: "bad_request"},
		{name: "bad summary base64", method: "POST", path: "/v1/transport.send", hdr: map[string]string{HeaderSummary: "!!"}, body: "data", status: 400, code: "bad_request"},
		{name: "unknown endpoint send", method: "POST", path: "/v1/transport.send?endpoint=mars", body: "data", status: 404, code: "unknown_endpoint"},
		{name: "oversize body (length known)", method: "POST", path: "/v1/transport.send?priority=critical", hdr: expect100, raw: bytes.NewReader(big), size: int64(len(big)), status: 413, code: "too_large"},
		{name: "oversize body (chunked)", method: "POST", path: "/v1/transport.send?priority=critical", raw: chunked{bytes.NewReader(big)}, size: -1, status: 413, code: "too_large"},
		{name: "outbox full", method: "POST", path: "/v1/transport.send?priority=normal", body: "data", status: 507, code: "outbox_full"},
		{name: "malformed JSON", method: "POST", path: "/v1/transport.bandwidth.status", body: `{"endpoint":`, status: 400, code: "bad_request"},
		{name: "JSON not an object", method: "POST", path: "/v1/transport.switch", body: `["satellite"]`, status: 400, code: "bad_request"},
		{name: "unknown JSON field", method: "POST", path: "/v1/transport.switch", body: `{"class":"satellite"}`, status: 400, code: "bad_request"},
		{name: "trailing JSON", method: "POST", path: "/v1/transport.switch", body: `{"to":"satellite"} {"to":"auto"}`, status: 400, code: "bad_request"},
		{name: "query on a JSON command", method: "POST", path: "/v1/transport.switch?to=satellite", status: 400, code: "bad_request"},
		{name: "switch without to", method: "POST", path: "/v1/transport.switch", body: `{}`, status: 400, code: "bad_request"},
		{name: "switch to nonsense", method: "POST", path: "/v1/transport.switch", body: `{"to":"warp"}`, status: 400, code: "bad_request"},
		{name: "switch unknown endpoint", method: "POST", path: "/v1/transport.switch", body: `{"endpoint":"mars","to":"satellite"}`, status: 404, code: "unknown_endpoint"},
		{name: "status unknown endpoint", method: "POST", path: "/v1/transport.bandwidth.status", body: `{"endpoint":"mars"}`, status: 404, code: "unknown_endpoint"},
		{name: "quality unknown endpoint", method: "POST", path: "/v1/transport.quality", body: `{"endpoint":"mars"}`, status: 404, code: "unknown_endpoint"},
		{name: "config class without profile", method: "POST", path: "/v1/transport.config", body: `{"class":"satellite"}`, status: 400, code: "bad_request"},
		{name: "config bad class", method: "POST", path: "/v1/transport.config", body: `{"class":"warp","profile":{"chunk_size":1}}`, status: 400, code: "bad_request"},
		{name: "config bad profile", method: "POST", path: "/v1/transport.config", body: `{"class":"satellite","profile":{"chunk_size":-5}}`, status: 400, code: "bad_request"},
		{name: "history bad window", method: "POST", path: "/v1/transport.bandwidth.history", body: `{"window":"-1m"}`, status: 400, code: "bad_request"},
		{name: "next bad action", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"action":"skip"}`, status: 400, code: "bad_request"},
		{name: "next bad priority", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"priorities":["urgent"]}`, status: 400, code: "bad_request"},
		{name: "next bad ttl", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"ttl":"0s"}`, status: 400, code: "bad_request"},
		{name: "ack bad id", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"action":"ack","id":"xyz"}`, status: 400, code: "bad_request"},
		{name: "ack not leased", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"action":"ack","id":"` + notLeased + `"}`, status: 409, code: "not_leased"},
		{name: "release not leased", method: "POST", path: "/v1/transport.bandwidth.sync.next", body: `{"action":"release","id":"` + notLeased + `"}`, status: 409, code: "not_leased"},
		{name: "monitor.start unknown endpoint", method: "POST", path: "/v1/transport.bandwidth.monitor.start", body: `{"endpoint":"mars"}`, status: 404, code: "unknown_endpoint"},
		{name: "monitor.start bad address", method: "POST", path: "/v1/transport.bandwidth.monitor.start", body: `{"endpoint":"mars","address":"mars"}`, status: 400, code: "bad_request"},
		{name: "monitor.start bad override", method: "POST", path: "/v1/transport.bandwidth.monitor.start", body: `{"endpoint":"mars","address":"127.0.0.1:9","monitor":{"window":"soon"}}`, status: 400, code: "bad_request"},
		{name: "monitor.start address of another", method: "POST", path: "/v1/transport.bandwidth.monitor.start", body: `{"endpoint":"core","address":"127.0.0.1:9"}`, status: 400, code: "bad_request"},
		{name: "monitor.stop unknown endpoint", method: "POST", path: "/v1/transport.bandwidth.monitor.stop", body: `{"endpoint":"mars"}`, status: 404, code: "unknown_endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, size := tc.raw, tc.size
			if body == nil {
				body, size = strings.NewReader(tc.body), int64(len(tc.body))
			}
			status, ce := rawRequest(t, hc, "http://agent", tc.method, tc.path, tc.hdr, body, size)
			if status != tc.status || ce.Code != tc.code {
				t.Fatalf("want HTTP %d %s, got HTTP %d %s: %s", tc.status, tc.code, status, ce.Code, ce.Message)
			}
			if len(ce.Message) < 10 {
				t.Fatalf("message %q does not say what to fix", ce.Message)
			}
			if after := stateOf(t, a); !reflect.DeepEqual(after, before) {
				t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// TestControlTCPToken checks the loopback TCP listener's bearer token.
func TestControlTCPToken(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	a := offlineAgent(t, nil)
	tokFile := filepath.Join(t.TempDir(), "token")
	const token = "s3cret-token-0123456789"
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []config.Control{
		{TCP: "0.0.0.0:0", TokenFile: tokFile}, // not loopback
		{TCP: "127.0.0.1:0"},                   // no token file
		{TCP: "127.0.0.1:0", TokenFile: short}, // token too short
		{TCP: "127.0.0.1:0", TokenFile: tokFile + ".missing"},
		{}, // nothing to listen on
	} {
		if srv, err := NewServer(a, bad, "", nil); err == nil {
			srv.Close()
			t.Fatalf("NewServer(%+v) accepted a bad configuration", bad)
		}
	}
	env := startControl(t, a, config.Control{TCP: "127.0.0.1:0", TokenFile: tokFile, MaxBodyBytes: 1 << 20})
	addr := env.srv.TCPAddr().String()
	before := stateOf(t, a)
	for _, tok := range []string{"", "wrong-token-0123456789", token + "x"} {
		c := NewClientTCP(addr, tok)
		_, err := c.Upload(context.Background(), CmdSend, UploadParams{Priority: "critical"}, strings.NewReader("x"), 1)
		wantStatus(t, err, http.StatusUnauthorized, "unauthorized")
		_, err = c.Health(context.Background())
		wantStatus(t, err, http.StatusUnauthorized, "unauthorized")
		c.Close()
	}
	if after := stateOf(t, a); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused requests changed the state: %+v → %+v", before, after)
	}
	c := NewClientTCP(addr, token)
	defer c.Close()
	if h, err := c.Health(context.Background()); err != nil || h.Status != "ok" {
		t.Fatalf("health with the token: %+v, %v", h, err)
	}
	if _, err := c.Upload(context.Background(), CmdSend, UploadParams{Priority: "critical"}, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if n := outboxCount(t, a).Total.Ops; n != before.Ops+1 {
		t.Fatalf("outbox holds %d ops after an authorised send, want %d", n, before.Ops+1)
	}
}

// TestControlSocketFile checks the socket's mode and what NewServer
// does with what is already at the path.
func TestControlSocketFile(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	a := offlineAgent(t, nil)
	dir := testutil.ShortTempDir(t)
	cfg := config.Control{MaxBodyBytes: 1 << 20}

	// A regular file is refused and kept.
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(a, cfg, file, nil); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("regular file at the socket path: want ErrNotSocket, got %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Fatalf("the file at the socket path was touched: %q, %v", b, err)
	}

	// A live socket is refused.
	env := startControl(t, a, cfg)
	fi, err := os.Stat(env.sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: mode %v, %v; want a socket with mode 0600", env.sock, fi.Mode(), err)
	}
	if _, err := NewServer(a, cfg, env.sock, nil); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("live socket: want ErrSocketInUse, got %v", err)
	}
	if _, err := env.c.Health(context.Background()); err != nil {
		t.Fatalf("the live server stopped answering: %v", err)
	}

	// A stale socket (its listener gone, the file left) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	testutil.StaleSocket(t, stale)
	srv, err := NewServer(a, cfg, stale, nil)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c := NewClient(stale)
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("server on a replaced stale socket: %v", err)
	}
	c.Close()
	srv.Close()
	if err := testutil.Returned(t, done, 10*time.Second, "Serve to return after Close"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}
}

// TestControlOutboxKinds checks that a state send supersedes the older
// state op of its key, as a producer expects.
func TestControlOutboxKinds(t *testing.T) {
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{MaxBodyBytes: 1 << 20})
	ctx := context.Background()
	for _, v := range []string{"1", "2"} {
		if _, err := env.c.Upload(ctx, CmdSend, UploadParams{Key: "k", Kind: "state"}, strings.NewReader(v), 1); err != nil {
			t.Fatal(err)
		}
	}
	st := outboxCount(t, a)
	if st.Total.Ops != 1 || st.Drops[outbox.ReasonSuperseded] != 1 {
		t.Fatalf("two state sends of one key: %d ops, %d superseded; want 1, 1", st.Total.Ops, st.Drops[outbox.ReasonSuperseded])
	}
}

// TestControlShutdownMidUpload stops the server while an upload is half
// sent: Serve returns within its grace period and no partial op is stored.
func TestControlShutdownMidUpload(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	a := offlineAgent(t, nil)
	sock := filepath.Join(testutil.ShortTempDir(t), "agent.sock")
	srv, err := NewServer(a, config.Control{MaxBodyBytes: 1 << 20}, sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	pr, pw := io.Pipe()
	c := NewClient(sock)
	defer c.Close()
	uploaded := make(chan error, 1)
	go func() {
		_, err := c.Upload(context.Background(), CmdSend, UploadParams{Priority: "high"}, pr, 1000)
		uploaded <- err
	}()
	if _, err := pw.Write(bytes.Repeat([]byte("x"), 500)); err != nil {
		t.Fatal(err)
	}
	// The server has read the first half once the write returned; now stop.
	cancel()
	if err := testutil.Returned(t, served, 15*time.Second, "Serve to return after its context ended mid-upload"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	pw.CloseWithError(errors.New("client gave up"))
	if err := testutil.Returned(t, uploaded, 15*time.Second, "the upload to end after the server stopped"); err == nil {
		t.Fatal("a half-sent upload succeeded")
	}
	if st := outboxCount(t, a); st.Total.Ops != 0 {
		t.Fatalf("a half-sent upload left %d ops in the outbox", st.Total.Ops)
	}
}
