package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func putBase(t *testing.T, c *baseCache, key string, payload []byte) [32]byte {
	t.Helper()
	h := sha256.Sum256(payload)
	if err := c.put("core", key, h, bytes.NewReader(payload), int64(len(payload))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return h
}

func readBase(t *testing.T, c *baseCache, key string) ([32]byte, []byte) {
	t.Helper()
	b, err := c.get("core", key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b.Hash, data
}

func TestBaseCacheRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	c, err := openBaseCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	p1 := bytes.Repeat([]byte("pump-3 "), 1000)
	h1 := putBase(t, c, "sensors/pump-3", p1)
	p2 := append(p1, "v2"...)
	h2 := putBase(t, c, "sensors/pump-3", p2) // replaces v1
	if got, data := readBase(t, c, "sensors/pump-3"); got != h2 || !bytes.Equal(data, p2) || got == h1 {
		t.Fatalf("got hash %x, %d bytes; want v2", got[:4], len(data))
	}
	// A crash leftover is swept; the base survives a reopen.
	if err := os.WriteFile(filepath.Join(dir, "x.base.123.tmp"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := openBaseCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got, data := readBase(t, c2, "sensors/pump-3"); got != h2 || !bytes.Equal(data, p2) {
		t.Fatal("base lost across reopen")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.base.123.tmp")); !os.IsNotExist(err) {
		t.Error("tmp leftover not swept")
	}
	if n, k := c2.usage(); n != int64(len(p2)) || k != 1 {
		t.Errorf("usage = %d bytes, %d bases", n, k)
	}
}

func TestBaseCacheEvictsLRUWithinBudget(t *testing.T) {
	c, err := openBaseCache(t.TempDir(), 4000)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 900)
	for _, k := range []string{"a", "b", "c", "d"} {
		putBase(t, c, k, payload)
	}
	readBase(t, c, "a") // a is now most recently used
	putBase(t, c, "e", payload)
	if n, _ := c.usage(); n > 4000 {
		t.Fatalf("usage %d over budget", n)
	}
	if _, err := c.get("core", "b"); !errors.Is(err, errNoBase) {
		t.Errorf("b (least recently used) not evicted: %v", err)
	}
	readBase(t, c, "a")
	// Over a quarter of the budget: not kept, and the older base goes.
	if err := c.put("core", "a", [32]byte{}, bytes.NewReader(make([]byte, 1500)), 1500); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get("core", "a"); !errors.Is(err, errNoBase) {
		t.Errorf("oversize base kept or old one not dropped: %v", err)
	}
}

func TestBaseCacheDamagedFileIsDropped(t *testing.T) {
	dir := t.TempDir()
	c, err := openBaseCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	putBase(t, c, "k", []byte("hello"))
	name := filepath.Join(dir, baseFileName("core", "k"))
	if err := os.WriteFile(name, []byte("xx"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := openBaseCache(dir, 1<<20)
	if err != nil {
		t.Fatalf("damaged base made open fail: %v", err)
	}
	if _, err := c2.get("core", "k"); !errors.Is(err, errNoBase) {
		t.Errorf("damaged base served: %v", err)
	}
}

func TestBaseCacheSizeMismatchFailsPut(t *testing.T) {
	c, err := openBaseCache(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.put("core", "k", [32]byte{}, bytes.NewReader([]byte("abc")), 5); err == nil {
		t.Fatal("short payload accepted")
	}
	if _, err := c.get("core", "k"); !errors.Is(err, errNoBase) {
		t.Errorf("failed put left a base: %v", err)
	}
}
