package core

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestAgentResetIsNotAnInternalError resets an op stream in the middle of
// a DATA frame, as an agent does when it gives up on an attempt: that is
// the agent's choice, not a failure of the core, so the core answers
// nothing and neither logs nor counts an internal error.
func TestAgentResetIsNotAnInternalError(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	str := openStream(t, c)
	id := hostile.OpID(0, 1)
	if err := hostile.Write(str, hostile.OpHeader(id, "k", 128<<10, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if f, err := hostile.Read(str, 10*time.Second); err != nil || f.Type() != wire.FrameResumeAnswer {
		t.Fatalf("answer to the header: %v, %v; want RESUME_ANSWER", f, err)
	}
	if _, err := str.Write(append(hostile.DataHead(id, 64<<10+18), make([]byte, 1000)...)); err != nil {
		t.Fatal(err)
	}
	str.CancelWrite(0x42)

	f, err := hostile.Read(str, 10*time.Second)
	if err == nil {
		t.Fatalf("the core answered the agent's reset with %s %+v", f.Type(), f)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the agent's reset the core's side ended with %v, want a clean end", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the reset counted", func() bool { return ts.srv.Stats().StreamsReset == 1 })
	if n := ts.srv.Stats().InternalErrors; n != 0 {
		t.Fatalf("%d internal errors counted for the agent's reset", n)
	}
	if logs := ts.logs.String(); containsAny(logs, "[ERROR]", "[WARN]") {
		t.Fatalf("the core logged the agent's reset as a problem:\n%s", logs)
	}
}
