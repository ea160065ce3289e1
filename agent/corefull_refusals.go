package agent

import (
	"errors"
	"io"
	"time"

	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// Refusals of the op itself (session.refused), of which sending the op
// again unchanged at once would only meet the same answer: a core that
// answers so to every attempt (a core of another version, one that keeps
// finding the op corrupt) got it again at once, a hot loop of thousands
// of streams a second. Each is sent again at once only where something
// changed (a delta base dropped: the op goes in full), else parked for
// the park's backoff (parked.go) with a log line that says what to do.

// refusedBytes settles an op refused base-mismatch, corrupt or
// hash-mismatch: the core could not rebuild or check its bytes. The op is
// checked against the outbox's disk first (corrupt, hash-mismatch) and
// quarantined if damaged there; else, if it went as a delta (delta), or a
// delta base of its key is held (an ERROR that ended its stream may have
// come before its mode was known), that base is dropped and the op goes
// again at once, in full. An op that went in full and is refused so again
// is the core's disagreement, not this disk's: it is parked.
func (s *session) refusedBytes(op outbox.Op, n *wire.Nack, delta bool) outcome {
	if n.Code != wire.CodeBaseMismatch && s.damaged(op) {
		return outDone // quarantined: never sent again
	}
	if s.bases.drop(s.name, op.Key) || delta {
		s.stats.retries.Add(1)
		s.release(op.ID)
		return outDone
	}
	return s.parkRefused(op, n)
}

// refusedExpired settles an op refused expired: its TTL ended before the
// core stored it, and the outbox drops it. One whose TTL has not ended by
// this agent's clock (or that has none) stays, and is parked: the core's
// clock is ahead of this one's, or it is wrong.
func (s *session) refusedExpired(op outbox.Op, n *wire.Nack) outcome {
	if op.ExpiresAt.IsZero() || time.Now().Before(op.ExpiresAt) {
		return s.parkRefused(op, n)
	}
	s.release(op.ID)
	if _, err := s.ob.PurgeExpired(time.Now()); err != nil {
		s.log.Warn("expired ops not purged; the core will refuse them again", "op", op.ID.String(), "error", err)
	}
	return outDone
}

// brokenAnswer reports whether err says that the core's answer to an op
// broke the protocol: an answer about another op (answer, packAnswer), a
// frame that is no answer or does not parse, or the stream's clean end
// before the answer. The core did not store the op, nor say why; sending
// it again at once only meets the same answer (a core of another
// version), so it is parked as a refused op is. A stream the core reset,
// or a connection gone (the core shut down), ends the read with quic-go's
// error, not io.EOF, and is no answer of the core's: the op goes again
// (TestConnectionClosedBeforeAnswerIsNoBrokenAnswer). Neither is a
// failure of this agent's own side (ownError: its payload, its delta
// base, its frames; TestUnreadableBaseGoesAgainInFull), nor a stream it
// ended itself (TestOwnStreamEndedBeforeAnswerIsNoBrokenAnswer).
func brokenAnswer(err error) bool {
	if _, ok := errors.AsType[*wire.ProtocolError](err); ok {
		return false // the core's ERROR: errorNack
	}
	if _, ok := errors.AsType[*ownError](err); ok {
		return false // sendop.go
	}
	return isAny(err, wire.ErrBadRequest, io.EOF, io.ErrUnexpectedEOF, wire.ErrUnknownFrame,
		wire.ErrMalformedFrame, wire.ErrFrameTooLarge, wire.ErrFieldTooLong, wire.ErrInvalidField)
}

// isAny reports whether err is any of targets (errors.Is).
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// parkBroken parks an op whose answer from the core broke the protocol
// (err, brokenAnswer); the core refused nothing, so no nack counts it.
func (s *session) parkBroken(op outbox.Op, err error) outcome {
	s.stats.parked.Add(1)
	s.log.Error("the core's answer to an op breaks the protocol; the op stays in the outbox and goes again after a backoff (10 s, doubling to 10 min)",
		"op", op.ID.String(), "key", op.Key, "error", err,
		"action", "check that the core and this agent run the same version; the core's log may say more")
	return outPark
}

// parkRefused keeps an op the core refused in the outbox and parks it for
// its backoff, and tells the operator why and what to do.
func (s *session) parkRefused(op outbox.Op, n *wire.Nack) outcome {
	s.stats.parked.Add(1)
	s.log.Error("core refused an op; it stays in the outbox and goes again after a backoff (10 s, doubling to 10 min)",
		"op", op.ID.String(), "key", op.Key, "code", n.Code.String(), "message", n.Msg, "action", refusalAction(n.Code, op))
	return outPark
}

// refusalAction says what an operator does about a refusal with code that
// parks op.
func refusalAction(code wire.Code, op outbox.Op) string {
	switch code {
	case wire.CodeUnknownOp:
		return "the core says it does not know this op, which no core of this agent's version says: check that the core and this agent run the same version"
	case wire.CodeVersion:
		return "the core and this agent share no protocol version; upgrade the older of the two"
	case wire.CodeBadRequest:
		return "the core finds the op's frames break the protocol: check that the core and this agent run the same version"
	case wire.CodeTooLarge:
		return "the op exceeds a limit of the core's: raise it there, or put smaller ops"
	case wire.CodeQuota:
		return "this agent's storage quota at the core is used up: raise it there, or free space"
	case wire.CodeUnknownAgent:
		return "the core does not know this agent's identity: add its certificate's name to the core's agent list"
	case wire.CodeCorrupt, wire.CodeHashMismatch:
		return "the op is intact on this agent's disk, the core finds it " + code.String() +
			" even in full: check that the core and this agent run the same version"
	case wire.CodeBaseMismatch:
		return "the op went in full, the core says its delta base is wrong: check that the core and this agent run the same version"
	case wire.CodeExpired:
		if op.ExpiresAt.IsZero() {
			return "the op has no TTL here, the core says it expired: check the core's clock and version"
		}
		return "the op expires at " + op.ExpiresAt.UTC().Format(time.RFC3339) + " by this agent's clock: the core's clock is ahead; check both clocks"
	}
	return "a code this agent does not know: the core runs a newer version; upgrade this agent"
}
