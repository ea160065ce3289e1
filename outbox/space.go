package outbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// bbolt copies on write: deleting ops (Ack, drops) needs fresh pages too.
// Enqueue therefore refuses new data while less than this headroom would be
// left, so that a full outbox can always be drained.
const minHeadroom = 256 << 10

func headroom(hwm int64) int64 { return minHeadroom + hwm/64 }

// checkSpace returns ErrNoSpace if writing need more bytes would leave less
// than the headroom, within Options.MaxFileSize and on the file system.
func (o *Outbox) checkSpace(need int64) error {
	var hwm int64
	if err := o.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil }); err != nil {
		return err
	}
	// Pending pages were freed by a committed transaction and become free
	// as soon as no reader still sees them.
	st := o.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(o.pageSize)
	reserve := headroom(hwm)
	if max := int64(o.opts.MaxFileSize); max > 0 {
		if used := hwm - free; used+need+reserve > max {
			return fmt.Errorf("%d bytes in use + %d new + %d headroom exceed MaxFileSize %d: %w", used, need, reserve, max, ErrNoSpace)
		}
	}
	if avail, ok := diskAvail(o.dir); ok && avail+free < need+reserve {
		return fmt.Errorf("%d bytes free on disk, need %d + %d headroom: %w", avail+free, need, reserve, ErrNoSpace)
	}
	return nil
}

// diskAvail returns the bytes available to us on dir's file system.
func diskAvail(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Clean(dir), &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

func isENOSPC(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
