package lifecycle

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve is a Serve loop on s: it serves until its context ends, then
// takes a step (as a server gives requests in flight their time) before
// it returns.
func serve(s *Serving, ctx context.Context, began chan<- struct{}, step <-chan struct{}) error {
	ctx, end, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	close(began)
	<-ctx.Done()
	<-step
	return nil
}

// TestCloseWaitsForServe: Close ends Serve's context and returns only once
// Serve has returned; a second Serve, and one after Close, are refused.
func TestCloseWaitsForServe(t *testing.T) {
	var s Serving
	began, step, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { done <- serve(&s, context.Background(), began, step) }()
	<-began
	if err := serve(&s, context.Background(), nil, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a second Serve: want net.ErrClosed, got %v", err)
	}
	closed := make(chan bool, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while Serve was still stopping")
	case <-done:
		t.Fatal("Serve returned before its last step")
	case step <- struct{}{}:
	}
	if unserved := <-closed; unserved {
		t.Fatal("Close reported that no Serve ran")
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	testutil.CheckClose(t, func() error { s.Close(); return nil }, func() error {
		return serve(&s, context.Background(), nil, nil)
	}, net.ErrClosed)
}

// TestCloseUnserved: Close before any Serve says so once, and Serve is
// refused after it; a Serve whose own context ended lets Close return at
// once.
func TestCloseUnserved(t *testing.T) {
	var s Serving
	if !s.Close() {
		t.Fatal("first Close before Serve: want unserved")
	}
	if s.Close() {
		t.Fatal("second Close: want unserved only once")
	}
	if err := serve(&s, context.Background(), nil, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: want net.ErrClosed, got %v", err)
	}

	var s2 Serving
	ctx, cancel := context.WithCancel(context.Background())
	began, step := make(chan struct{}), make(chan struct{})
	close(step)
	cancel()
	if err := serve(&s2, ctx, began, step); err != nil {
		t.Fatalf("Serve with an ended context: %v", err)
	}
	if s2.Close() {
		t.Fatal("Close after a Serve: want served")
	}
}

// TestMarkClosedOnce: of many Closes at once, exactly one is the first,
// and the flag is set when each returns.
func TestMarkClosedOnce(t *testing.T) {
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
		firsts atomic.Int32
	)
	for range 8 {
		wg.Go(func() {
			if MarkClosed(&mu, &closed) {
				firsts.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			if !closed {
				t.Error("MarkClosed returned with the flag unset")
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d of 8 calls were the first, want 1", n)
	}
	if MarkClosed(&mu, &closed) {
		t.Fatal("a call after the others was the first")
	}
}
