package lifecycle

import (
	"context"
	"net"
	"sync"
)

// Serving is the lifecycle state of a server with a blocking Serve loop.
// Its zero value is ready; it must not be copied after first use.
type Serving struct {
	mu     sync.Mutex
	closed bool
	cancel context.CancelFunc // ends the running Serve's context; nil before Begin
	served chan struct{}      // closed when Serve returns
}

// Begin starts a Serve. It fails with net.ErrClosed after Close or once a
// Serve has begun. Otherwise it returns the context Serve serves under,
// which ends at Close or with parent, and end, which Serve must call as
// it returns.
func (s *Serving) Begin(parent context.Context) (ctx context.Context, end func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.cancel != nil {
		return nil, nil, net.ErrClosed
	}
	ctx, cancel := context.WithCancel(parent)
	s.cancel, s.served = cancel, make(chan struct{})
	served := s.served
	return ctx, func() { cancel(); close(served) }, nil
}

// Close ends the context of a Serve that has begun and waits until it has
// returned. It reports true on the first call when no Serve has begun:
// the caller then closes what Serve would have closed. It is idempotent
// and safe for concurrent use.
func (s *Serving) Close() (unserved bool) {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	cancel, served := s.cancel, s.served
	s.mu.Unlock()
	if cancel == nil {
		return first
	}
	cancel()
	<-served
	return false
}
