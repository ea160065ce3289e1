package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
	"github.com/edge-sync/edge-sync/internal/unixsock"
)

// Errors of the control API.
var (
	// ErrBadRequest marks a control request with a missing or malformed
	// parameter; the message names it.
	ErrBadRequest = errors.New("bad request")
	// ErrSocketInUse means another process listens on the control socket.
	ErrSocketInUse = unixsock.ErrInUse
	// ErrNotSocket means the control socket path names a file that is not a
	// unix socket; it is never removed.
	ErrNotSocket = unixsock.ErrNotSocket
	// ErrNothingWaiting is returned by Client.Lease when no op waits.
	ErrNothingWaiting = errors.New("no op waiting")
)

// Header names of the control API (docs/control-api.md).
const (
	// HeaderSummary carries an op's summary, base64 (standard encoding), on
	// transport.send and transport.bandwidth.sync.queue.
	HeaderSummary = "X-Edge-Sync-Summary"
	// HeaderOp carries the leased op's metadata as JSON (a LeasedOp) on a
	// transport.bandwidth.sync.next answer whose body is the payload.
	HeaderOp = "X-Edge-Sync-Op"
)

// Server serves the agent's control API: JSON over HTTP on a unix socket
// and, optionally, on a loopback TCP address with a bearer token.
type Server struct {
	a       *agent.Agent
	cfg     config.Control
	log     hclog.Logger
	sock    string
	token   []byte // sha256 of the TCP bearer token
	unix    *unixsock.Listener
	tcp     net.Listener
	handler http.Handler

	serving lifecycle.Serving
	once    sync.Once // closes the listeners
}

// NewServer opens the control API's listeners for agent a: the unix
// socket at socketPath (none when it is "") and cfg.TCP when set. It
// refuses a socket path that is not a socket or on which something
// listens, and removes a stale socket left by a crashed agent.
func NewServer(a *agent.Agent, cfg config.Control, socketPath string, log hclog.Logger) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 30
	}
	s := &Server{a: a, cfg: cfg, log: log, sock: socketPath}
	if socketPath == "" && cfg.TCP == "" {
		return nil, errors.New("control server: neither a socket nor a TCP address is configured")
	}
	if cfg.TCP != "" {
		tok, err := readToken(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("control server: %w", err)
		}
		s.token = tok
	}
	if socketPath != "" {
		l, err := unixsock.Listen(socketPath)
		if err != nil {
			return nil, fmt.Errorf("control server: control.socket: %w", err)
		}
		s.unix = l
	}
	if cfg.TCP != "" {
		l, err := listenLoopback(cfg.TCP)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("control server: %w", err)
		}
		s.tcp = l
	}
	s.handler = s.routes()
	return s, nil
}

// readToken reads the bearer token file and returns the token's hash.
func readToken(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("control.tcp needs control.token_file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return nil, fmt.Errorf("token file %s: token must be at least 16 characters, has %d", path, len(tok))
	}
	h := sha256.Sum256([]byte(tok))
	return h[:], nil
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control tcp %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("control tcp %q: must be a loopback address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control tcp: %w", err)
	}
	return l, nil
}

// SocketPath returns the unix socket path, or "".
func (s *Server) SocketPath() string { return s.sock }

// TCPAddr returns the TCP listener's address, or nil when TCP is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Handler returns the API's handler without authentication, as served on
// the unix socket.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API until ctx ends or Close is called, then closes the
// listeners, removes the socket and waits for the serving goroutines. It
// runs once: after Close, or while it runs, it fails with net.ErrClosed.
func (s *Server) Serve(ctx context.Context) error {
	ctx, end, err := s.serving.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	var wg sync.WaitGroup
	var servers []*http.Server
	errs := make(chan error, 2)
	start := func(l net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	if s.unix != nil {
		start(s.unix, s.handler)
		s.log.Info("control API listening", "socket", s.sock)
	}
	if s.tcp != nil {
		start(s.tcp, s.authenticate(s.handler))
		s.log.Info("control API listening", "tcp", s.tcp.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	s.shutdown(servers)
	wg.Wait()
	return err
}

// shutdown stops the HTTP servers: requests in flight get 5 s to finish.
func (s *Server) shutdown(servers []*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("control API: requests still running after the grace period are cut off", "error", err)
			if err := srv.Close(); err != nil {
				s.log.Warn("control API: close", "error", err)
			}
		}
	}
	s.closeListeners()
}

func (s *Server) closeListeners() {
	// The HTTP servers have closed the listeners they served; these
	// closes are for listeners never served, or a second close (a no-op
	// for the unix socket, net.ErrClosed for TCP).
	s.once.Do(func() {
		if s.unix != nil {
			if err := s.unix.Close(); err != nil {
				s.log.Warn("control socket: close", "socket", s.sock, "error", err)
			}
		}
		if s.tcp != nil {
			if err := s.tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("control tcp: close", "error", err)
			}
		}
	})
}

// Close stops Serve and waits until it has returned, or closes the
// listeners if Serve never ran. It is idempotent; problems while stopping
// are logged, so it returns nil.
func (s *Server) Close() error {
	if s.serving.Close() {
		s.closeListeners()
	}
	return nil
}

// authenticate requires "Authorization: Bearer TOKEN", compared in
// constant time (as hashes, so that the length does not leak either).
func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token: send 'Authorization: Bearer TOKEN' with the token of control.token_file")
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], s.token) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "wrong bearer token: use the token of control.token_file")
			return
		}
		h.ServeHTTP(w, r)
	})
}
