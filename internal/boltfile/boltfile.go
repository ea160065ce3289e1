package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// ErrDamaged means the file's header is not a usable bbolt header: no
// valid meta page, or one that describes more than the file holds.
var ErrDamaged = errors.New("damaged bbolt file")

// bbolt's file header: two meta pages, each a 16-byte page header followed
// by the meta record, whose first 56 bytes an FNV-64a checksum covers.
const (
	magic       = 0xED0CDAED
	version     = 2
	pageHeader  = 16
	metaSumSpan = 56
	metaLen     = pageHeader + metaSumSpan + 8 // through the checksum
	minFileSize = 4096                         // bbolt writes four pages at least
	minPageSize = 512
	maxPageSize = 1 << 20
)

// guessPageSizes are the page sizes bbolt may have used, tried for the
// second meta page when the first is damaged and cannot say.
var guessPageSizes = []int64{4096, 8192, 16384, 65536}

type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // high water mark: pages in use
	txid     uint64
}

// parseMeta reads the meta page that starts b; ok is false when it is not
// a valid one (wrong magic or version, bad checksum).
func parseMeta(b []byte) (m meta, ok bool) {
	if len(b) < metaLen {
		return meta{}, false
	}
	r := b[pageHeader:]
	le := binary.LittleEndian
	if le.Uint32(r[0:]) != magic || le.Uint32(r[4:]) != version {
		return meta{}, false
	}
	h := fnv.New64a()
	h.Write(r[:metaSumSpan])
	if h.Sum64() != le.Uint64(r[metaSumSpan:]) {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(r[8:]), root: le.Uint64(r[16:]), freelist: le.Uint64(r[32:]),
		hwm: le.Uint64(r[40:]), txid: le.Uint64(r[48:])}, true
}

// Check reads the meta pages of the bbolt file at path and returns an
// error wrapping ErrDamaged when bbolt could fault on the file rather than
// return an error. A missing or empty file passes (bbolt creates or
// initialises it); other errors are the file system's.
func Check(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
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
	if size < minFileSize {
		return fmt.Errorf("%w: file is %d bytes, too short for a database", ErrDamaged, size)
	}
	m, ok, err := newestMeta(f, size)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: file is %d bytes and has no valid meta page", ErrDamaged, size)
	}
	if m.pageSize < minPageSize || m.pageSize > maxPageSize {
		return fmt.Errorf("%w: page size %d", ErrDamaged, m.pageSize)
	}
	if need := int64(m.hwm) * int64(m.pageSize); m.hwm > 1<<40 || need > size {
		return fmt.Errorf("%w: file is %d bytes but its header says %d pages of %d bytes (truncated?)", ErrDamaged, size, m.hwm, m.pageSize)
	}
	if m.root >= m.hwm || (m.freelist >= m.hwm && m.freelist != ^uint64(0)) {
		return fmt.Errorf("%w: header points past the end of the data (root %d, freelist %d, pages %d)", ErrDamaged, m.root, m.freelist, m.hwm)
	}
	return nil
}

// newestMeta returns the valid meta page bbolt would use, the one with the
// higher transaction ID; ok is false when neither is valid.
func newestMeta(f *os.File, size int64) (m meta, ok bool, err error) {
	var buf [metaLen]byte
	read := func(off int64) (meta, bool, error) {
		if _, err := f.ReadAt(buf[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				return meta{}, false, nil
			}
			return meta{}, false, err
		}
		m, ok := parseMeta(buf[:])
		return m, ok, nil
	}
	m0, ok0, err := read(0)
	if err != nil {
		return meta{}, false, err
	}
	// The second meta page sits one page in.
	sizes := guessPageSizes
	if ok0 {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		if ps <= 0 || ps > maxPageSize || ps+metaLen > size {
			continue
		}
		m1, ok1, err := read(ps)
		if err != nil {
			return meta{}, false, err
		}
		if !ok1 || int64(m1.pageSize) != ps {
			continue
		}
		if !ok0 || m1.txid > m0.txid {
			return m1, true, nil
		}
		break
	}
	return m0, ok0, nil
}
