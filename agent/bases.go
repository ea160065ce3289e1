package agent

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edge-sync/edge-sync/internal/atomicfile"
)

// baseCache keeps, per endpoint and key, the last version of a keyed state
// op that the core acknowledged: the base that the next version's delta is
// computed against. It lives in files (one per key) so that a large base is
// never held in memory, within a byte budget; the least recently used base
// is evicted first, and an evicted base only means the next send is full.
//
// A file is: magic (4) | payload hash (32) | key length (uvarint) | key |
// payload. Files are written with internal/atomicfile, and the leftovers of
// a crash are swept at open.
type baseCache struct {
	dir    string
	budget int64

	mu      sync.Mutex
	entries map[string]*list.Element // file name → element of lru (value *baseEntry)
	lru     *list.List               // front = most recently used
	total   int64
}

type baseEntry struct {
	file string
	hash [32]byte
	size int64 // payload bytes
}

var baseMagic = [4]byte{'e', 's', 'b', '1'}

var (
	// errNoBase means no base is kept for a key: send in full.
	errNoBase = errors.New("no delta base for this key")
	// errBaseUnreadable means a base's file no longer holds the bytes its
	// index says (it lost its end, or fails to read): this disk's fault,
	// never the core's. The base is dropped and the op goes in full.
	errBaseUnreadable = errors.New("delta base unreadable")
)

func baseFileName(endpoint, key string) string {
	h := sha256.Sum256([]byte(endpoint + "\x00" + key))
	return hex.EncodeToString(h[:16]) + ".base"
}

// openBaseCache opens (creating) dir and indexes the bases in it.
func openBaseCache(dir string, budget int64) (*baseCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open delta bases: %w", err)
	}
	// The cache owns dir and nothing writes into it yet: sweep the
	// leftovers of writes a crash interrupted. One that stays is litter the
	// index below skips, so like a damaged base it never fails the start.
	_ = atomicfile.SweepDir(dir)
	c := &baseCache{dir: dir, budget: budget, entries: map[string]*list.Element{}, lru: list.New()}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open delta bases: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".base") {
			continue
		}
		e, err := readBaseHeader(filepath.Join(dir, name))
		if err != nil {
			// A damaged base costs one full send; never a failed start.
			// One that cannot be removed is skipped again next start.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		e.file = name
		c.entries[name] = c.lru.PushBack(e)
		c.total += e.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func readBaseHeader(path string) (*baseEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, 4+32+binary.MaxVarintLen64)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	hdr = hdr[:n]
	if len(hdr) < 37 || [4]byte(hdr[:4]) != baseMagic {
		return nil, errors.New("not a delta base file")
	}
	e := &baseEntry{hash: [32]byte(hdr[4:36])}
	klen, vn := binary.Uvarint(hdr[36:])
	if vn <= 0 || klen > 1<<20 {
		return nil, errors.New("bad key length in delta base file")
	}
	e.size = st.Size() - int64(36+vn) - int64(klen)
	if e.size < 0 {
		return nil, errors.New("truncated delta base file")
	}
	return e, nil
}

// put stores payload (size bytes, hashing to hash) as the base of key,
// replacing the previous one. A payload larger than a quarter of the budget
// is not kept (and any older base of the key is dropped).
func (c *baseCache) put(endpoint, key string, hash [32]byte, payload io.Reader, size int64) error {
	name := baseFileName(endpoint, key)
	if size > c.budget/4 {
		c.remove(name)
		return nil
	}
	err := atomicfile.Write(filepath.Join(c.dir, name), 0o600, func(w io.Writer) error {
		hdr := append(append(baseMagic[:4:4], hash[:]...), binary.AppendUvarint(nil, uint64(len(key)))...)
		hdr = append(hdr, key...)
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		n, err := io.Copy(w, payload)
		if err == nil && n != size {
			err = fmt.Errorf("payload is %d bytes, want %d", n, size)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store delta base: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[name]; ok {
		c.total -= el.Value.(*baseEntry).size
		c.lru.Remove(el)
	}
	c.entries[name] = c.lru.PushFront(&baseEntry{file: name, hash: hash, size: size})
	c.total += size
	c.evictLocked()
	return nil
}

// base is an open base version: its hash and a reader of its payload.
type base struct {
	Hash [32]byte
	Size int64
	f    *os.File
	off  int64
}

// ReadAt reads the base payload. Only the base's end is io.EOF: a file
// that ends before it, or fails, is errBaseUnreadable (the codec would
// take a short read for the end of a base shorter than it is).
func (b *base) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.Size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), b.Size-off)]
	n, err := b.f.ReadAt(want, b.off+off)
	switch {
	case n == len(want) && len(want) < len(p):
		return n, io.EOF
	case n == len(want):
		return n, nil
	case err == nil || errors.Is(err, io.EOF):
		return n, fmt.Errorf("read delta base of %d bytes at %d: %d of %d bytes, the file ends early: %w",
			b.Size, off, n, len(want), errBaseUnreadable)
	}
	return n, fmt.Errorf("read delta base of %d bytes at %d: %w: %w", b.Size, off, errBaseUnreadable, err)
}

// Close releases the file.
func (b *base) Close() error { return b.f.Close() }

// get opens the base of key, or returns errNoBase.
func (c *baseCache) get(endpoint, key string) (*base, error) {
	name := baseFileName(endpoint, key)
	c.mu.Lock()
	el, ok := c.entries[name]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil, errNoBase
	}
	e := el.Value.(*baseEntry)
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		c.remove(name)
		return nil, errNoBase
	}
	return &base{Hash: e.hash, Size: e.size, f: f, off: 36 + int64(len(binary.AppendUvarint(nil, uint64(len(key))))) + int64(len(key))}, nil
}

// drop forgets the base of key, e.g. after the core refused a delta; it
// reports whether it held one.
func (c *baseCache) drop(endpoint, key string) bool { return c.remove(baseFileName(endpoint, key)) }

// remove forgets the base in file name; it reports whether there was one.
func (c *baseCache) remove(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[name]
	if ok {
		c.removeLocked(el)
	}
	return ok
}

func (c *baseCache) removeLocked(el *list.Element) {
	e := el.Value.(*baseEntry)
	c.lru.Remove(el)
	delete(c.entries, e.file)
	c.total -= e.size
	// Out of the index, the base is not used again by this process; a file
	// that cannot be removed stays on disk, and the next start checks it
	// as it checks every base file (its header, the budget).
	_ = os.Remove(filepath.Join(c.dir, e.file))
}

func (c *baseCache) evictLocked() {
	for c.total > c.budget && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

// usage returns the bytes and number of bases kept.
func (c *baseCache) usage() (bytes int64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, c.lru.Len()
}
