package core

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestDataFirstRefusedBeforeItsBody opens streams with a DATA frame that
// declares the largest body a core accepts and sends 64 KiB of it. No op
// stream may begin with DATA, so the core refuses each at its header,
// without waiting for (or allocating) the body.
func TestDataFirstRefusedBeforeItsBody(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := hostile.DataFirst(ctx, c, 0, 20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	for i, str := range a.Streams {
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("stream %d opening with DATA: no answer within 10 s: %v", i, err)
		}
		e, ok := f.(*wire.Error)
		if !ok || e.Code != wire.CodeBadRequest {
			t.Fatalf("stream %d opening with DATA: answered %s %+v, want ERROR bad-request", i, f.Type(), f)
		}
	}
}
