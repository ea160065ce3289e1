package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// fillOutbox writes ops of 40 KiB into an outbox file at path, as a
// stopped agent leaves it, and returns their payloads by key.
func fillOutbox(t *testing.T, path string, n int) map[string][]byte {
	t.Helper()
	o, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for i := range n {
		key := fmt.Sprint("reading/", i)
		out[key] = testutil.RandomBytes(uint64(i), 40<<10)
		if _, err := o.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.Normal,
			Payload: bytes.NewReader(out[key])}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOutboxVerify checks a stopped agent's outbox offline: exit 0 when
// intact, exit 1 with the damaged op's ID, key and reason when not, the
// file unchanged either way.
func TestOutboxVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	payloads := fillOutbox(t, path, 6)
	out, _, err := run(t, "outbox", "verify", "--file", path)
	if err != nil || !strings.Contains(out, "checked 6 ops, 240 KiB") || !strings.Contains(out, "no damage found") {
		t.Fatalf("verify of an intact outbox: %v\n%s", err, out)
	}
	testutil.Damage(t, path, payloads["reading/4"], 20<<10, 512)
	before, _ := os.ReadFile(path)
	var o, e bytes.Buffer
	code := Main(context.Background(), []string{"outbox", "verify", "--file", path}, nil, &o, &e)
	if code != 1 || !strings.Contains(o.String(), `"reading/4"`) || !strings.Contains(o.String(), "fail their checksum") ||
		!strings.Contains(o.String(), "checked 5 ops") || !strings.Contains(e.String(), "damaged ops") {
		t.Fatalf("verify of a damaged outbox: exit %d\n%s%s", code, o.String(), e.String())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("outbox verify changed the file")
	}
	out, _, err = run(t, "outbox", "verify", "--file", path, "--json")
	var r outbox.VerifyReport
	if !errors.Is(err, errDamaged) || json.Unmarshal([]byte(out), &r) != nil || len(r.Damaged) != 1 || r.Damaged[0].Key != "reading/4" {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	// While an agent (here: the outbox) has the file open, it says to use ctl.
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "outbox", "verify", "--file", path)
	ob.Close()
	if !errors.Is(err, outbox.ErrLocked) || !strings.Contains(err.Error(), "ctl transport.outbox.verify") {
		t.Fatalf("verify of a file in use: %v", err)
	}
	for _, args := range [][]string{{"outbox"}, {"outbox", "fix"}, {"outbox", "verify"}, {"outbox", "verify", "--file", path, "--config", "x"}} {
		var ue *UsageError
		if _, _, err := run(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
}

// TestAgentRefusesDamagedPageWithAdvice starts the real agent command on
// an outbox whose page header bbolt cannot read: it exits with an error
// that says what to do, and the file is left as it was.
func TestAgentRefusesDamagedPageWithAdvice(t *testing.T) {
	dir := t.TempDir()
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	agentHCL := writeDemoAgentHCL(t, dir, pkiDir, `endpoint "core" { address = "127.0.0.1:9" }
control { socket = "off" }`)
	if err := os.MkdirAll(filepath.Join(dir, "agent"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent", "outbox.db")
	payloads := fillOutbox(t, path, 4)
	testutil.DamagePageHeader(t, path, payloads["reading/2"], 4096)
	file, _ := os.ReadFile(path)
	_, _, err := run(t, "agent", "--config", agentHCL)
	if !errors.Is(err, outbox.ErrCorrupt) || !strings.Contains(err.Error(), "edge-sync outbox verify --file "+path) ||
		!strings.Contains(err.Error(), "edge-sync outbox salvage --file "+path) {
		t.Fatalf("agent on a damaged outbox: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, file) {
		t.Fatal("the agent changed the damaged outbox file")
	}
	out, _, err := run(t, "outbox", "verify", "--config", agentHCL)
	if !errors.Is(err, errDamaged) || !strings.Contains(out, `"reading/2"`) || !strings.Contains(out, "checked 3 ops") {
		t.Fatalf("outbox verify --config: %v\n%s", err, out)
	}
}

// TestOutboxSalvage salvages an outbox the agent refuses (a damaged page
// header): the intact ops are in a new file in its place, the damaged file
// is kept aside unchanged, and the report names the op that was lost.
func TestOutboxSalvage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	payloads := fillOutbox(t, path, 5)
	testutil.DamagePageHeader(t, path, payloads["reading/1"], 4096)
	file, _ := os.ReadFile(path)
	out, _, err := run(t, "outbox", "salvage", "--file", path)
	if err != nil || !strings.Contains(out, "copied 4 ops (160 KiB)") || !strings.Contains(out, `"reading/1"`) {
		t.Fatalf("salvage: %v\n%s", err, out)
	}
	keptAside(t, path, file)
	if _, err := os.Stat(path + ".salvage"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the salvage copy is left behind: %v", err)
	}
	o, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ops, _ := o.List("", edgesync.Normal, 0)
	if len(ops) != 4 {
		t.Fatalf("%d ops in the salvaged outbox, want 4", len(ops))
	}
	for _, op := range ops {
		p, err := o.OpenPayload(op.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, p.Size())
		if _, err := p.ReadAt(got, 0); err != nil || !bytes.Equal(got, payloads[op.Key]) {
			t.Fatalf("%s differs after salvage (%v)", op.Key, err)
		}
	}
}

// TestCtlOutboxVerify damages an op under a running agent and drives
// transport.outbox.verify, status, stats and purge through ctl.
func TestCtlOutboxVerify(t *testing.T) {
	h := startCtlHarness(t, false)
	payloads := map[string][]byte{}
	for i := range 3 {
		key := fmt.Sprint("blob/", i)
		payloads[key] = testutil.RandomBytes(uint64(50+i), 40<<10)
		if _, _, err := h.ctl(t, string(payloads[key]), "put", "--key", key, "--priority", "normal", "-"); err != nil {
			t.Fatal(err)
		}
	}
	if out, _, err := h.ctl(t, "", "transport.outbox.verify"); err != nil || !strings.Contains(out, "no damage found") {
		t.Fatalf("verify of an intact outbox: %v\n%s", err, out)
	}
	// Damage under the running agent, as a failing disk would.
	testutil.Damage(t, filepath.Join(h.dir, "agent", "outbox.db"), payloads["blob/1"], 1000, 64)
	out, _, err := h.ctl(t, "", "transport.outbox.verify")
	if !errors.Is(err, errDamaged) || !strings.Contains(out, `"blob/1"`) || !strings.Contains(out, "checked 2 ops") {
		t.Fatalf("verify after damage: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "transport.outbox.verify", "--json")
	var vr control.VerifyResponse
	if !errors.Is(err, errDamaged) || json.Unmarshal([]byte(out), &vr) != nil || vr.OK || len(vr.Quarantined) != 1 {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if out, _, err := h.ctl(t, "", "transport.bandwidth.status"); err != nil || !regexp.MustCompile(`(?m)^damaged +1 op quarantined \(40 KiB\)`).MatchString(out) ||
		!strings.Contains(out, "edge-sync ctl transport.outbox.verify") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if out, _, err := h.ctl(t, "", "transport.stats"); err != nil || !strings.Contains(out, "quarantined: 1 op(s), 40 KiB") {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"transport.outbox.purge"}, {"transport.outbox.purge", "--all", vr.Quarantined[0].ID.String()}, {"transport.outbox.purge", "nope"}} {
		var ue *UsageError
		if _, _, err := h.ctl(t, "", args...); !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
	if out, _, err := h.ctl(t, "", "transport.outbox.purge", vr.Quarantined[0].ID.String()); err != nil || !strings.Contains(out, "purged 1") {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	if out, _, err := h.ctl(t, "", "transport.outbox.verify"); err != nil || !strings.Contains(out, "no damage found") {
		t.Fatalf("verify after the purge: %v\n%s", err, out)
	}
}

// keptAside checks that a salvage of path kept the damaged file, whose
// bytes were file, aside as one PATH.damaged-TIME, unchanged.
func keptAside(t *testing.T, path string, file []byte) {
	t.Helper()
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged files kept aside: %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, file) {
		t.Fatal("the damaged file was changed")
	}
}
