package agent

import (
	"errors"

	"github.com/edge-sync/edge-sync/outbox"
)

// damaged is what the sender does when the core says an op's bytes do not
// hash to the SHA-256 its header carries (the one the outbox took of the
// producer's bytes): the outbox checks the op again from its disk and
// quarantines it if it fails, so that it is not sent again and again. It
// reports whether the op was quarantined; if not (a wrong delta base, or
// bytes changed on the way), the op is retried as before.
func (s *session) damaged(op outbox.Op) bool {
	err := s.ob.VerifyOp(s.ctx, op.ID)
	if errors.Is(err, outbox.ErrDamaged) {
		return true
	}
	if err != nil && !errors.Is(err, outbox.ErrNotFound) {
		s.log.Debug("op not checked after a hash mismatch; it is retried", "op", op.ID.String(), "error", err)
	}
	return false
}
