package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
	"github.com/edge-sync/edge-sync/internal/unixsock"
)

// shutdownGrace is how long requests in flight get to finish when the
// server stops.
const shutdownGrace = 5 * time.Second

// Server serves the admin API of a store on a unix socket of mode 0600.
type Server struct {
	ln  *unixsock.Listener
	hs  *http.Server
	log hclog.Logger

	serving lifecycle.Serving
}

// NewServer listens on the unix socket at path for the admin API of s. It
// replaces a stale socket and refuses a live one (unixsock.ErrInUse) or a
// path that is not a socket (unixsock.ErrNotSocket).
func NewServer(path string, s core.Backend, log hclog.Logger, opts ...Option) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ln, err := unixsock.Listen(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	hs := &http.Server{Handler: Handler(s, log, opts...), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	return &Server{ln: ln, hs: hs, log: log}, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.ln.Path() }

// Serve serves until ctx ends or Close is called, then gives requests in
// flight a few seconds, closes the socket (removing its file) and returns.
// It runs once: after Close, or while it runs, it fails with
// net.ErrClosed.
func (s *Server) Serve(ctx context.Context) error {
	ctx, end, err := s.serving.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	served := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.hs.Shutdown(sctx); err != nil {
			s.log.Warn("admin API: requests still running after the grace period are cut off", "error", err)
			if err := s.hs.Close(); err != nil {
				s.log.Warn("admin API: close", "error", err)
			}
		}
	}()
	s.log.Info("admin API listening", "socket", s.ln.Path())
	err = s.hs.Serve(s.ln)
	close(served)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops Serve and waits until it has returned, or closes the socket
// if Serve never ran. It is idempotent and returns the socket's close
// error; problems while Serve stops are logged.
func (s *Server) Close() error {
	if s.serving.Close() {
		return s.ln.Close()
	}
	return nil
}
