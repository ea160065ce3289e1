package core

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestHelloStreamCanceledByTheAgent: an agent that has read the Welcome
// stops reading the hello stream (the agent does, with CancelRead), and
// its STOP_SENDING can reach the core before the core closes its side of
// the stream. That is the agent's choice and the connection stays up; a
// core that took the failed Close for its own error dropped the agent's
// new connection now and then. Here the agent cancels before it reads,
// so that the STOP_SENDING arrives before the core writes or closes,
// every time.
func TestHelloStreamCanceledByTheAgent(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := hostile.DialRaw(ctx, ts.addr, ts.pki.ClientTLS(t, "127.0.0.1"))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := hostile.Write(str, &wire.Hello{Versions: wire.SupportedVersions, Agent: "site-1"}); err != nil {
			cancel()
			t.Fatal(err)
		}
		str.CancelRead(0)
		// The core stops reading the hello stream after its Welcome; its
		// STOP_SENDING may come before this Close, which then fails
		// ("close called for canceled stream"): the agent's side is done
		// either way.
		if err := str.Close(); err != nil && !canceledByPeer(context.Cause(str.Context())) {
			cancel()
			t.Fatal(err)
		}
		// The connection answers an op stream: it was not dropped.
		op, err := conn.OpenStreamSync(ctx)
		if err == nil {
			err = hostile.Write(op, &wire.ResumeQuery{ID: hostile.OpID(i, 1)})
		}
		var f wire.Frame
		if err == nil {
			f, err = hostile.Read(op, 10*time.Second)
		}
		cancel()
		if err != nil {
			t.Fatalf("connection %d after the agent canceled its hello stream: %v (core: %v)", i, err, context.Cause(conn.Context()))
		}
		if f.Type() != wire.FrameResumeAnswer {
			t.Fatalf("connection %d: answer %s, want RESUME_ANSWER", i, f.Type())
		}
		conn.CloseWithError(0, "")
	}
	if n := ts.srv.Stats().InternalErrors; n != 0 {
		t.Errorf("%d internal errors counted; the agent's cancel is none", n)
	}
}
