package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// damagedCoreStore writes a core config whose store holds a state op, an
// event and a partial op of site-1, then damages the partial op's record
// (the length of its key) as a bad sector would: the core refuses to
// open the store. It returns the config file, the store's path and the
// state op's data.
func damagedCoreStore(t *testing.T) (hcl, path string, data []byte) {
	t.Helper()
	dir := testutil.ShortTempDir(t)
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	cfg := demoCoreConfig(dir, pkiDir)
	hcl = writeCoreHCL(t, filepath.Join(dir, "core.hcl"), cfg, "")
	path = cfg.StorePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := core.Open(path, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data = testutil.RandomBytes(1, 30_000)
	ev := testutil.RandomBytes(2, 5000)
	for i, op := range []struct {
		kind edgesync.OpKind
		key  string
		data []byte
	}{{edgesync.StateOp, "sensors/pump-3", data}, {edgesync.EventOp, "alarms", ev}} {
		hdr := core.PartialHeader{OpID: testutil.OpID(uint64(i + 1)), Key: op.key, Kind: op.kind, Priority: edgesync.Normal,
			Size: int64(len(op.data)), Hash: sha256.Sum256(op.data)}
		if _, err := s.Apply("site-1", hdr, bytes.NewReader(op.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.BeginPartial("site-1", core.PartialHeader{OpID: testutil.OpID(3), Key: "half-sent/7b0c1e", Kind: edgesync.StateOp,
		Priority: edgesync.Normal, Size: 100, Hash: sha256.Sum256(nil)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Damage(t, path, []byte("half-sent/7b0c1e"), -1, 1)
	return hcl, path, data
}

// TestCoreRefusesDamagedStoreWithAdvice starts the core command on a
// store it cannot open: the error names the damage and the two commands
// that deal with it, and its records are left as they were (Open
// commits a transaction of its own before it reads them, so the file's
// bytes are not).
func TestCoreRefusesDamagedStoreWithAdvice(t *testing.T) {
	hcl, path, _ := damagedCoreStore(t)
	before, err := core.VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "core", "--config", hcl)
	t.Logf("core on a damaged store:\n%v", err)
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), "edge-sync core verify --config "+hcl) ||
		!strings.Contains(err.Error(), "edge-sync core salvage --config "+hcl) {
		t.Fatalf("core on a damaged store: %v", err)
	}
	if after, err := core.VerifyFile(path, time.Second); err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("the core changed the damaged store's records:\n%+v\n%+v (%v)", before, after, err)
	}
}

// TestCoreVerifyAndSalvage drives core verify and core salvage on the
// store the core refused: verify exits 1 naming the damaged record and
// changes nothing; salvage puts a copy in place that the core opens, with
// the intact op byte-identical, and keeps the damaged file aside.
func TestCoreVerifyAndSalvage(t *testing.T) {
	hcl, path, data := damagedCoreStore(t)
	file, _ := os.ReadFile(path)
	var o, e bytes.Buffer
	code := Main(context.Background(), []string{"core", "verify", "--config", hcl}, nil, &o, &e)
	t.Logf("core verify:\n%s%s", o.String(), e.String())
	if code != 1 || !strings.Contains(o.String(), "checked 1 agents: 1 keys, 1 events") ||
		!strings.Contains(o.String(), "site-1") || !strings.Contains(o.String(), "partials") ||
		!strings.Contains(o.String(), edgesync.OpID(testutil.OpID(3)).String()) || !strings.Contains(e.String(), "core salvage") {
		t.Fatalf("core verify of a damaged store: exit %d\n%s%s", code, o.String(), e.String())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, file) {
		t.Fatal("core verify changed the file")
	}
	out, _, err := run(t, "core", "verify", "--file", path, "--json")
	var r core.VerifyReport
	if !errors.Is(err, errStoreDamaged) || json.Unmarshal([]byte(out), &r) != nil || len(r.Damaged) != 1 || r.Damaged[0].Bucket != "partials" {
		t.Fatalf("core verify --json: %v\n%s", err, out)
	}

	out, _, err = run(t, "core", "salvage", "--config", hcl)
	t.Logf("core salvage:\n%s", out)
	if err != nil || !strings.Contains(out, "copied 1 agents: 1 keys, 1 events") || !strings.Contains(out, "the damaged file is kept at "+path+".damaged-") {
		t.Fatalf("core salvage: %v\n%s", err, out)
	}
	keptAside(t, path, file)
	if out, _, err := run(t, "core", "verify", "--config", hcl); err != nil || !strings.Contains(out, "no damage found") {
		t.Fatalf("core verify after salvage: %v\n%s", err, out)
	}
	if out, _, err := run(t, "core", "get", "--config", hcl, "--agent", "site-1", "sensors/pump-3"); err != nil || out != string(data) {
		t.Fatalf("core get after salvage: %v (%d bytes, want %d)", err, len(out), len(data))
	}
}

// TestCoreVerifyRefuses: a store a core has open, a JetStream config, and
// wrong flags each get an error that says what to do.
func TestCoreVerifyRefuses(t *testing.T) {
	hcl, path, _ := damagedCoreStore(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s, err := core.Open(path, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"verify", "salvage"} {
		if _, _, err := run(t, "core", sub, "--config", hcl); !errors.Is(err, core.ErrLocked) || !strings.Contains(err.Error(), "stop the core") {
			t.Errorf("core %s of an open store: %v, want one saying to stop the core", sub, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(filepath.Dir(hcl), "js.hcl")
	writeFile(t, js, readFile(t, hcl)+"store {\n  backend = \"jetstream\"\n  urls = [\"nats://127.0.0.1:4222\"]\n}\n")
	wantError(t, "jetstream", []string{"core", "verify", "--config", js}, "jetstream", "nats stream")
	for _, args := range [][]string{{"core", "verify"}, {"core", "salvage", "--file", path, "--config", hcl}, {"core", "verify", "--file", path, "extra"}} {
		var ue *UsageError
		if _, _, err := run(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
	out, _, err := run(t, "core", "salvage", "--help")
	if (err != nil && !errors.Is(err, flag.ErrHelp)) || !strings.Contains(out, "edge-sync core salvage --config /etc/edge-sync/core.hcl") || !strings.Contains(out, "STORE.damaged-TIME") {
		t.Fatalf("core salvage --help: %v\n%s", err, out)
	}
}
