package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// TestCoreAnswersFramesOfNoHeaderBadRequest: what a core of this version
// answers a stream whose first frame is the DATA or the COMMIT of an op
// it has no OP_HEADER of is an ERROR bad-request, with one op per stream
// or several: it never sends unknown-op (wire.CodeUnknownOp), whose
// comment said it did. So an unknown-op the agent meets is no older
// core's, and the agent's action for it must not say to upgrade the core.
func TestCoreAnswersFramesOfNoHeaderBadRequest(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	id := hostile.OpID(1, 1)
	for _, caps := range []wire.Capabilities{0, wire.CapOpsPerStream} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := hostile.Dial(ctx, c.Addr.String(), p.ClientTLS(t, "127.0.0.1"), caps)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for _, first := range []wire.Frame{
			&wire.Data{ID: id, Chunk: []byte{0, 1, 1, 'x'}}, // mode full, 1 plain byte, 1 body byte
			&wire.Commit{ID: id, Chunks: 1},
		} {
			str, err := cl.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := hostile.Write(str, first); err != nil {
				t.Fatal(err)
			}
			str.Close()
			f, err := hostile.Read(str, 10*time.Second)
			if err != nil {
				t.Fatalf("caps %b, a stream that begins with %s: no answer: %v", caps, first.Type(), err)
			}
			e, ok := f.(*wire.Error)
			if !ok || e.Code != wire.CodeBadRequest {
				t.Errorf("caps %b, a stream that begins with %s: the core answers %#v; want ERROR %s", caps, first.Type(), f, wire.CodeBadRequest)
			}
		}
	}
	if a := refusalAction(wire.CodeUnknownOp, outbox.Op{}); strings.Contains(a, "upgrade the core") || !strings.Contains(a, "same version") {
		t.Errorf("the action for unknown-op: %q; want no upgrade of the core (no core sends it), and to check that both run the same version", a)
	}
}
