package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
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
