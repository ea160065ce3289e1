package control

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestServerLifecycle: the control server closes twice without error,
// served or not, and refuses to serve once closed; Close returns only
// when Serve has stopped, its socket removed (docs/architecture.md#lifecycle).
func TestServerLifecycle(t *testing.T) {
	a := offlineAgent(t, nil)
	newServer := func(t *testing.T) (*Server, string) {
		sock := filepath.Join(testutil.ShortTempDir(t), "agent.sock")
		srv, err := NewServer(a, config.Control{MaxBodyBytes: 1 << 20}, sock, testutil.Logger(t, "control"))
		if err != nil {
			t.Fatal(err)
		}
		return srv, sock
	}
	serve := func(srv *Server) func() error { return func() error { return srv.Serve(context.Background()) } }
	t.Run("never served", func(t *testing.T) {
		srv, sock := newServer(t)
		testutil.CheckClose(t, srv.Close, serve(srv), net.ErrClosed)
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Close left the socket %s (stat: %v)", sock, err)
		}
	})
	t.Run("serving", func(t *testing.T) {
		srv, sock := newServer(t)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(context.Background()) }()
		c := NewClient(sock)
		defer c.Close()
		testutil.WaitFor(t, 10*time.Second, "the control API to answer", func() bool {
			_, err := c.Health(context.Background())
			return err == nil
		})
		if err := testutil.Within(t, "a second Serve", serve(srv)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("a second Serve: want net.ErrClosed, got %v", err)
		}
		testutil.CheckClose(t, srv.Close, serve(srv), net.ErrClosed)
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Close returned before Serve removed the socket %s (stat: %v)", sock, err)
		}
		if err := testutil.Within(t, "Serve", func() error { return <-done }); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	})
}
