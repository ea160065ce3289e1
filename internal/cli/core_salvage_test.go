package cli

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
// that deal with it, and the file is left as it was.
func TestCoreRefusesDamagedStoreWithAdvice(t *testing.T) {
	hcl, path, _ := damagedCoreStore(t)
	file, _ := os.ReadFile(path)
	_, _, err := run(t, "core", "--config", hcl)
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), "edge-sync core verify --config "+hcl) ||
		!strings.Contains(err.Error(), "edge-sync core salvage --config "+hcl) {
		t.Fatalf("core on a damaged store: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, file) {
		t.Fatal("the core changed the damaged store")
	}
}
