package cli

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// damagedObjectStore writes a core config whose store holds a 30,000
// byte state op of site-1 under fw/image, and damages 4 of its stored
// bytes: the core opens the store, and reading the object fails its hash.
func damagedObjectStore(t *testing.T) (hcl string, cfg config.Core, opID edgesync.OpID) {
	t.Helper()
	_, cfg = testCoreConfig(t)
	hcl = writeCoreHCL(t, filepath.Join(cfg.DataDir, "..", "core.hcl"), cfg, "")
	if err := os.MkdirAll(filepath.Dir(cfg.StorePath()), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := core.Open(cfg.StorePath(), core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data := testutil.RandomBytes(3, 30_000)
	hdr := core.PartialHeader{OpID: testutil.OpID(1), Key: "fw/image", Kind: edgesync.StateOp, Priority: edgesync.Normal,
		Size: int64(len(data)), Hash: sha256.Sum256(data)}
	if _, err := s.Apply("site-1", hdr, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Damage(t, cfg.StorePath(), data[20_000:20_032], 0, 4)
	return hcl, cfg, hdr.OpID
}

// TestCoreGetDamagedObjectSaysWhatToDo damages the stored bytes of a
// state op, as a bad sector would, and asks core get for it: from the
// store (no core running) and through a running core's admin socket,
// whose answer is cut short once its status is sent. Either way the error
// says the core's copy is damaged and what to do (docs/integrity.md),
// not only "unexpected EOF", and no file is left at -o.
func TestCoreGetDamagedObjectSaysWhatToDo(t *testing.T) {
	hcl, cfg, _ := damagedObjectStore(t)

	out := filepath.Join(t.TempDir(), "image.bin")
	want := []string{"fw/image", "damaged", "edge-sync core verify --config " + hcl, "put it again", "docs/integrity.md"}
	wantError(t, "core get, no core running", []string{"core", "get", "--config", hcl, "--agent", "site-1", "fw/image", "-o", out}, want...)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("core get left %s behind: %v", out, err)
	}

	startTestCore(t, cfg)
	wantError(t, "core get, through the running core", []string{"core", "get", "--config", hcl, "--agent", "site-1", "fw/image", "-o", out}, want...)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("core get left %s behind: %v", out, err)
	}
}

// TestCoreSalvageSaysWhatItDroppedAndWhatNext salvages a store whose one
// object's data is damaged: the object is not copied and neither is its
// entry in the applied index, so the op, sent again by an agent that still
// holds it, is stored again. The report says so, as salvage's JSON does
// (unmarked_applied), and says to start the core next.
func TestCoreSalvageSaysWhatItDroppedAndWhatNext(t *testing.T) {
	hcl, _, id := damagedObjectStore(t)
	out, _, err := run(t, "core", "salvage", "--config", hcl)
	t.Logf("core salvage:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id.String(), "1 applied-index entries not copied", "stored again", "start the core: edge-sync core --config " + hcl} {
		if !strings.Contains(out, want) {
			t.Errorf("core salvage's report does not contain %q", want)
		}
	}
}
