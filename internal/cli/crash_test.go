package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// The crash test re-executes this test binary as a core or an agent
// process (EDGE_SYNC_CRASH_CHILD) so that it can kill them with SIGKILL.
func TestMain(m *testing.M) {
	switch os.Getenv("EDGE_SYNC_CRASH_CHILD") {
	case "core":
		crashChildCore()
		return
	case "agent":
		crashChildAgent()
		return
	}
	goleak.VerifyTestMain(m)
}

type crashEnv struct {
	Dir      string `json:"dir"`
	CoreAddr string `json:"core_addr"`
	Run      int    `json:"run"`
	Ops      int    `json:"ops"`

	// coreSock is the core's UDP socket at CoreAddr, which the test holds
	// so that a restarted core needs no free port: a core child takes
	// it by socket activation, as from systemd.
	coreSock *os.File
}

// heldCoreAddr returns a loopback UDP address for the core children and
// its socket, held until t ends: a core started again after a SIGKILL
// serves on the same socket, and no other process can take its port
// between the two (another test's job once did, and the restart failed).
func heldCoreAddr(t *testing.T) (string, *os.File) {
	pc := testutil.UDPSocket(t)
	return pc.LocalAddr().String(), testutil.UDPSocketFile(t, pc)
}

func crashConfigs(e crashEnv) (config.Core, config.Agent) {
	pkiDir := filepath.Join(e.Dir, "pki")
	cc := config.DefaultCore()
	cc.Listen = e.CoreAddr
	cc.DataDir = filepath.Join(e.Dir, "core")
	cc.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "core.pem"), Key: filepath.Join(pkiDir, "core-key.pem")}
	ac := config.DefaultAgent()
	ac.Name = "demo-site"
	ac.DataDir = filepath.Join(e.Dir, "agent")
	ac.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "agent-demo-site.pem"), Key: filepath.Join(pkiDir, "agent-demo-site-key.pem")}
	fast := 50 * time.Millisecond
	ac.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	ac.Control.Socket = "off"
	ac.Endpoints = []config.Endpoint{{Name: "core", Address: e.CoreAddr, ServerName: "127.0.0.1", Monitor: ac.Monitor}}
	return cc, ac
}

func readCrashEnv() crashEnv {
	var e crashEnv
	if err := json.Unmarshal([]byte(os.Getenv("EDGE_SYNC_CRASH_ENV")), &e); err != nil {
		fmt.Fprintln(os.Stderr, "bad EDGE_SYNC_CRASH_ENV:", err)
		os.Exit(3)
	}
	return e
}

func crashChildCore() {
	e := readCrashEnv()
	cc, _ := crashConfigs(e)
	// A held socket comes by socket activation, as systemd hands it.
	_, _, err := startCoreOn(context.Background(), cc, hclog.NewNullLogger(), nil)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	select {} // until SIGKILL
}

// crashPayload is op i of run r: small mostly, every 10th 1-3 MiB so that
// kills land in the middle of transfers.
func crashPayload(run, i int) []byte {
	rnd := rand.New(rand.NewPCG(uint64(run), uint64(i)))
	n := 200 + rnd.IntN(8<<10)
	if i%10 == 3 {
		n = 1<<20 + rnd.IntN(2<<20)
	}
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(rnd.Uint32())
	}
	return b
}

func crashChildAgent() {
	e := readCrashEnv()
	_, ac := crashConfigs(e)
	opts := agent.Options{Logger: hclog.NewNullLogger(), ListenPacket: func() (net.PacketConn, error) {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		return linksim.Wrap(pc, linksim.Broadband()) // 10 Mbit/s up: big ops take a while
	}}
	a, _, err := startAgent(context.Background(), ac, opts)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	for i := range e.Ops {
		p := crashPayload(e.Run, i)
		kind, key := edgesync.EventOp, fmt.Sprintf("events/%d/%d", e.Run, i)
		if i%2 == 1 {
			kind, key = edgesync.StateOp, fmt.Sprintf("state/%d", i%7)
		}
		op, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: key, Kind: kind,
			Priority: edgesync.Priority(i % edgesync.NumPriorities), Payload: bytes.NewReader(p)})
		if err != nil {
			fmt.Println("ERROR", err)
			continue
		}
		sum := sha256.Sum256(p)
		fmt.Printf("ACCEPTED %s %s %s %s\n", op.ID, kind, key, hex.EncodeToString(sum[:]))
	}
	fmt.Println("DONE")
	select {}
}

type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, mode string, e crashEnv) *child {
	t.Helper()
	envJSON, _ := json.Marshal(e)
	env := []string{"EDGE_SYNC_CRASH_CHILD=" + mode, "EDGE_SYNC_CRASH_ENV=" + string(envJSON)}
	var cmd *exec.Cmd
	var out io.ReadCloser
	if mode == "core" && e.coreSock != nil {
		cmd, out = testutil.StartChildActivated(t, os.Stderr, e.coreSock, env...)
	} else {
		cmd, out = testutil.StartChild(t, os.Stderr, env...)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	select {
	case l := <-c.lines:
		if l != "READY" {
			t.Fatalf("%s child: %s", mode, l)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s child not ready within 60 s", mode)
	}
	return c
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

type accepted struct {
	id   edgesync.OpID
	kind edgesync.OpKind
	key  string
	sha  string
}

// TestCrashSafetySIGKILL kills the agent process 10 times during transfers
// and the core once, restarting each; at the end every op the agent
// accepted is at the core exactly once (keys at their newest version).
func TestCrashSafetySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes for about a minute")
	}
	dir := t.TempDir()
	testCerts(t, filepath.Join(dir, "pki"))
	env := crashEnv{Dir: dir, Ops: 40}
	env.CoreAddr, env.coreSock = heldCoreAddr(t)
	coreProc := startChild(t, "core", env)
	defer func() { coreProc.kill() }()

	var mu sync.Mutex
	var all []accepted
	rnd := rand.New(rand.NewPCG(5, 8))
	const kills = 10
	for run := range kills + 1 {
		env.Run = run
		a := startChild(t, "agent", env)
		killAfter := time.Duration(300+rnd.IntN(1700)) * time.Millisecond
		if run == kills {
			killAfter = 0 // the last run lives to drain
		}
		// The kill comes killAfter after the child's first accepted op, not
		// after its start, which under -race on a loaded machine takes
		// most of that time (runs then accepted too few ops to test);
		// a child that accepts nothing is killed after a minute.
		var deadline <-chan time.Time
		giveUp := time.After(time.Minute)
		collect := func(l string) {
			f := strings.Fields(l)
			if len(f) == 5 && f[0] == "ACCEPTED" {
				id, err := edgesync.ParseOpID(f[1])
				if err != nil {
					t.Errorf("child printed bad id: %q", l)
					return
				}
				k, err := edgesync.ParseOpKind(f[2])
				if err != nil {
					t.Errorf("child printed bad kind: %q", l)
					return
				}
				mu.Lock()
				all = append(all, accepted{id: id, kind: k, key: f[3], sha: f[4]})
				mu.Unlock()
			}
		}
		if run < kills {
		read:
			for {
				select {
				case l, ok := <-a.lines:
					if !ok {
						break read
					}
					collect(l)
					if deadline == nil && strings.HasPrefix(l, "ACCEPTED ") {
						deadline = time.After(killAfter)
					}
				case <-deadline:
					break read
				case <-giveUp:
					break read
				}
			}
			a.kill()
			for l := range a.lines { // what it printed before dying counts
				collect(l)
			}
			if run == kills/2 {
				coreProc.kill()
				coreProc = startChild(t, "core", env)
			}
			continue
		}
		// Last run: wait for its ops, then for the core to hold everything.
		for l := range a.lines {
			collect(l)
			if l == "DONE" {
				break
			}
		}
		r := admin.NewSocketOrStore(filepath.Join(dir, "core", "core.sock"), filepath.Join(dir, "core", "core.db"))
		defer r.Close()
		var missing []string
		testutil.PollEvery(3*time.Minute, 500*time.Millisecond, func() bool {
			missing = crashMissing(t, r, all)
			return len(missing) == 0
		})
		a.kill()
		if len(missing) > 0 {
			t.Fatalf("%d of %d accepted ops not at the core after the last run, e.g. %v", len(missing), len(all), missing[:min(5, len(missing))])
		}
	}
	t.Logf("%d ops accepted across %d agent processes (%d SIGKILLed, core SIGKILLed once); all at the core exactly once", len(all), kills+1, kills)
	if len(all) < 100 {
		t.Errorf("only %d ops accepted: the kills came too early to test much", len(all))
	}
}

// crashMissing lists accepted ops the core does not hold as it must:
// events exactly once with their bytes' hash, keys at the newest version.
func crashMissing(t *testing.T, r admin.Reader, all []accepted) []string {
	ctx := context.Background()
	evs, err := r.Events(ctx, "demo-site", 1, admin.MaxLimit)
	if err != nil {
		return []string{err.Error()}
	}
	count := map[edgesync.OpID]int{}
	hashes := map[edgesync.OpID]string{}
	for _, e := range evs {
		count[e.OpID]++
		hashes[e.OpID] = e.SHA256
	}
	keys, err := r.Keys(ctx, "demo-site", "", admin.MaxLimit)
	if err != nil {
		return []string{err.Error()}
	}
	cur := map[string]string{}
	for _, k := range keys {
		cur[k.Key] = k.SHA256
	}
	newest := map[string]accepted{}
	var missing []string
	for _, a := range all {
		if a.kind == edgesync.StateOp {
			if n, ok := newest[a.key]; !ok || n.id.Compare(a.id) < 0 {
				newest[a.key] = a
			}
			continue
		}
		switch n := count[a.id]; {
		case n > 1:
			t.Fatalf("event %s stored %d times", a.id, n)
		case n == 0:
			missing = append(missing, "event "+a.key)
		case hashes[a.id] != a.sha:
			t.Fatalf("event %s stored with other bytes", a.id)
		}
	}
	for key, a := range newest {
		if cur[key] != a.sha {
			missing = append(missing, "key "+key)
		}
	}
	return missing
}
