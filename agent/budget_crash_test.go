package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// The budget crash test re-executes the test binary as an agent child;
// TestMain hands control to budgetChild when this variable is set. The
// child reads its setup from the other variables.
const (
	budgetChildEnv = "AGENT_BUDGET_CHILD" // the data dir
	budgetCoreEnv  = "AGENT_BUDGET_CORE"  // the relay's address
	budgetPKIEnv   = "AGENT_BUDGET_PKI"   // the PKI dir (testutil.NewPKI's file names)
)

// crashBudget is the child's and parent's budget: large enough that
// nothing is held, a step of 64 KiB.
func crashBudget() budget.Config {
	c := budget.Default(1<<30, budget.Period{Kind: budget.Fixed, Length: time.Hour})
	c.PersistStep = 64 << 10
	return c
}

// budgetChild runs an agent with crashBudget on the endpoint "core" and
// enqueues background ops until it is killed (SIGKILL) or stopped
// (SIGTERM: it closes the agent and exits 0). It prints "up" once the
// agent has started.
func budgetChild() {
	dir, pkiDir := os.Getenv(budgetChildEnv), os.Getenv(budgetPKIEnv)
	cfg := config.DefaultAgent()
	cfg.Name, cfg.DataDir = "site-1", dir
	cfg.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "agent.pem"), Key: filepath.Join(pkiDir, "agent-key.pem")}
	fast := 20 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	b := crashBudget()
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: os.Getenv(budgetCoreEnv), ServerName: "127.0.0.1", Monitor: cfg.Monitor, Budget: &b}}
	tlsConf, err := pki.ClientTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, "127.0.0.1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child tls:", err)
		os.Exit(2)
	}
	a, err := New(cfg, Options{TLS: tlsConf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := a.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child start:", err)
		os.Exit(2)
	}
	fmt.Println("up")
	deadline := time.After(5 * time.Minute) // bounds an orphan
	for i := 0; ; i++ {
		data := testutil.RandomBytes(uint64(i)+uint64(time.Now().UnixNano()), 256<<10)
		if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("k/%d", i%8), Kind: edgesync.StateOp,
			Priority: edgesync.Background, Payload: bytes.NewReader(data)}); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "child enqueue:", err)
		}
		select {
		case <-ctx.Done():
			if err := a.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "child close:", err)
				os.Exit(3)
			}
			os.Exit(0)
		case <-deadline:
			os.Exit(4)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBudgetSpendSurvivesSIGKILL runs a real agent process whose socket
// goes through a linksim relay, which counts every byte it sent. After a
// SIGKILL the spend on disk is at least what the relay carried and at
// most one persist step (plus a datagram) more; a second run starts from
// that figure, and after its clean stop the spend is the first figure
// plus exactly what the second run sent: nothing counted twice, nothing
// forgotten.
func TestBudgetSpendSurvivesSIGKILL(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	lossless := linksim.Direction{RateBps: 50_000_000, Delay: 2 * time.Millisecond, QueueBytes: 16 << 20}
	relay, err := linksim.NewRelay(linksim.RelayConfig{Target: c.Addr.String(), Profile: linksim.Profile{Name: "lossless", Up: lossless, Down: lossless}})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	dir := t.TempDir()
	env := []string{budgetChildEnv + "=" + dir, budgetCoreEnv + "=" + relay.Addr().String(), budgetPKIEnv + "=" + p.Dir}
	sent := func() int64 { return int64(relay.Stats().Up.Bytes) }
	settled := func(what string) int64 {
		t.Helper()
		last := int64(-1)
		testutil.WaitFor(t, 10*time.Second, what+": the relay to carry what the child sent", func() bool {
			st := relay.Stats().Up
			n := int64(st.Bytes)
			done := st.Held == 0 && n == last
			last = n
			return done
		})
		return last
	}
	spendOnDisk := func() int64 {
		t.Helper()
		b, err := budget.Open(crashBudget(), budget.Options{Path: filepath.Join(dir, "budget-core.json")})
		if err != nil {
			t.Fatal(err)
		}
		return b.Status().Spent // not closed: Close would write it back
	}
	run := func(until int64) *exec.Cmd {
		t.Helper()
		cmd, out := testutil.StartChild(t, os.Stderr, env...)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "up" {
			t.Fatalf("child did not start: %q", sc.Text())
		}
		testutil.WaitFor(t, 2*time.Minute, fmt.Sprintf("the child to send %d bytes", until), func() bool { return sent() > until })
		return cmd
	}

	first := run(2 << 20)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	sent1 := settled("after SIGKILL")
	spend1 := spendOnDisk()
	step := crashBudget().PersistStep
	// The bound: one step, plus the datagrams being written when the
	// spend was last saved (QUIC, the lane and the probes write at once).
	if spend1 < sent1 || spend1 > sent1+step+16*1500 {
		t.Fatalf("after SIGKILL the budget holds %d bytes; the relay carried %d (persist step %d)", spend1, sent1, step)
	}
	t.Logf("after SIGKILL: relay carried %d, budget holds %d (+%d)", sent1, spend1, spend1-sent1)

	second := run(sent1 + 1<<20)
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("child did not stop cleanly: %v", err)
	}
	sent2 := settled("after a clean stop")
	spend2 := spendOnDisk()
	if want := spend1 + (sent2 - sent1); spend2 != want {
		t.Fatalf("after a clean stop the budget holds %d bytes; want %d (the first run's %d plus the %d the second sent)",
			spend2, want, spend1, sent2-sent1)
	}
}
