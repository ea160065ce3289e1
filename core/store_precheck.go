package core

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's file header: two meta pages, each a 16-byte page header followed
// by the meta record (little-endian on the platforms we build for).
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltPageHeader  = 16
	boltMetaSumSpan = 56 // bytes of meta covered by its checksum
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // high water mark: pages in use
	txid     uint64
}

func parseBoltMeta(b []byte) (boltMeta, bool) {
	if len(b) < boltPageHeader+boltMetaSumSpan+8 {
		return boltMeta{}, false
	}
	m := b[boltPageHeader:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumSpan])
	if h.Sum64() != le.Uint64(m[boltMetaSumSpan:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// precheckFile refuses files that would make bbolt fault rather than
// return an error: bbolt maps the file into memory and trusts its meta
// page, so a file truncated below the meta page's high water mark ends in
// SIGBUS, which no recover can catch. It returns nil for a missing or empty
// file (bbolt creates it) and for anything bbolt itself rejects cleanly.
func precheckFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	if size < 4096 {
		return fmt.Errorf("%w: file is %d bytes, too short for a database", ErrCorrupt, size)
	}
	first := make([]byte, 4096)
	if _, err := io.ReadFull(f, first); err != nil {
		return err
	}
	var metas []boltMeta
	m0, ok0 := parseBoltMeta(first)
	if ok0 {
		metas = append(metas, m0)
	}
	// The second meta page sits one page in; with meta 0 damaged, try the
	// page sizes bbolt may have used.
	sizes := []int64{4096, 8192, 16384, 65536}
	if ok0 {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		if ps <= 0 || ps > 1<<20 || ps+4096 > size {
			continue
		}
		b := make([]byte, 4096)
		if _, err := f.ReadAt(b, ps); err != nil {
			continue
		}
		if m1, ok := parseBoltMeta(b); ok && int64(m1.pageSize) == ps {
			metas = append(metas, m1)
			break
		}
	}
	if len(metas) == 0 {
		return nil // bbolt reports ErrInvalid or ErrChecksum itself
	}
	// bbolt uses the valid meta with the higher transaction ID.
	m := metas[0]
	for _, x := range metas[1:] {
		if x.txid > m.txid {
			m = x
		}
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 {
		return fmt.Errorf("%w: page size %d", ErrCorrupt, m.pageSize)
	}
	if need := int64(m.hwm) * int64(m.pageSize); m.hwm > 1<<40 || need > size {
		return fmt.Errorf("%w: file is %d bytes but its header says %d pages of %d bytes (truncated?)", ErrCorrupt, size, m.hwm, m.pageSize)
	}
	if m.root >= m.hwm || (m.freelist >= m.hwm && m.freelist != ^uint64(0)) {
		return fmt.Errorf("%w: header points past the end of the data (root %d, freelist %d, pages %d)", ErrCorrupt, m.root, m.freelist, m.hwm)
	}
	return nil
}
