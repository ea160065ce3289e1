package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// What transport.bandwidth.status says of the connection besides the
// link: the last failure to connect or lost connection (the transfers in
// flight and their progress are in progress.go).

// ConnError is a failure to connect to the core, or the loss of a
// connection.
type ConnError struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// lastError keeps an endpoint's last ConnError.
type lastError struct{ p atomic.Pointer[ConnError] }

// note records err, unless it is nil or the cancellation of the
// endpoint's run.
func (l *lastError) note(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	l.p.Store(&ConnError{At: time.Now(), Error: err.Error()})
}

func (l *lastError) load() *ConnError { return l.p.Load() }

// logDialFailure logs a failure to connect to the core at addrs. A core
// that refused the connection (an ERROR to the hello, or its close with a
// reason code) was reached: the line says that it refuses this agent, its
// reason and what to do, not that it cannot be reached, which sent the
// operator to look at the network.
func logDialFailure(log hclog.Logger, addrs []string, err error) {
	code, msg := refusedConnection(err)
	if code == wire.CodeOK {
		log.Warn("cannot reach the core; retrying with backoff", "addresses", addrs, "error", err)
		return
	}
	action := refusalAction(code, outbox.Op{})
	if coreTrouble(code) {
		action = refusalCause(code)
	}
	log.Error("the core refuses this agent's connection; retrying with backoff", "addresses", addrs,
		"code", code.String(), "core_message", msg, "action", action)
}

// refusedConnection is the core's reason code and message when err says
// that the core refused the connection, else CodeOK.
func refusedConnection(err error) (wire.Code, string) {
	if pe, ok := errors.AsType[*wire.ProtocolError](err); ok {
		return pe.Code, pe.Msg
	}
	if ae, ok := errors.AsType[*quic.ApplicationError](err); ok && ae.Remote && ae.ErrorCode != 0 {
		return wire.Code(ae.ErrorCode), ae.ErrorMessage
	}
	return wire.CodeOK, ""
}

// shortSession is how long a connection lives before the dial backoff
// resets. A core that closes each connection soon after it is made (at
// the agent's first op, say) had the agent dial again at once, a hot loop
// of handshakes (TestCoreClosingEachConnectionBacksOff: 932 in 2 s); now
// the next dial waits the backoff, as after a failed one (coreClosed).
// A connection that ended otherwise is dialled again, or failed over
// from, at once: the core's shutdown, a restarted core's stateless reset
// (waiting there delayed the first op at a restarted core from 0.1 s to
// 0.6 s, and 8 s by its fifth restart: TestCoreCrashesReconnectAtOnce),
// an idle timeout, the agent's own close.
const shortSession = 5 * time.Second

// coreClosed reports whether cause, why a connection ended, is the
// core's close of it (its CONNECTION_CLOSE) for another reason than its
// shutdown: an application close, or a transport error other than
// NO_ERROR.
func coreClosed(cause error) bool {
	if ae, ok := errors.AsType[*quic.ApplicationError](cause); ok {
		return ae.Remote && wire.Code(ae.ErrorCode) != wire.CodeShuttingDown
	}
	te, ok := errors.AsType[*quic.TransportError](cause)
	return ok && te.Remote && te.ErrorCode != quic.NoError
}

// lostCause is why a session on conn ended with err: the connection's own
// cause (an idle timeout, the core's close) when the session says only
// that the connection closed.
func lostCause(conn *quic.Conn, err error) error {
	if errors.Is(err, errConnLost) {
		if cause := context.Cause(conn.Context()); cause != nil {
			return cause
		}
	}
	return err
}
