package control

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestControlOutboxVerify damages one queued op on disk under a running
// agent: transport.outbox.verify finds and quarantines it, status and stats
// show it, and transport.outbox.purge deletes it.
func TestControlOutboxVerify(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	var cfg config.Agent
	a := offlineAgent(t, func(c *config.Agent) { cfg = *c })
	env := startControl(t, a, config.Control{MaxBodyBytes: 1 << 20})
	ctx := context.Background()
	cl := env.c
	var victim []byte
	for i := range 5 {
		data := testutil.RandomBytes(uint64(i), 48<<10)
		if i == 3 {
			victim = data
		}
		if _, err := cl.Upload(ctx, CmdSend, UploadParams{Key: fmt.Sprint("blob/", i)}, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	var vr VerifyResponse
	if err := cl.Call(ctx, CmdVerify, nil, &vr); err != nil || !vr.OK || vr.Ops != 5 || vr.Bytes != 5*48<<10 {
		t.Fatalf("verify of an intact outbox: %+v, %v", vr, err)
	}
	testutil.Damage(t, cfg.OutboxPath(), victim, len(victim)/2, 512) // under the running agent
	if err := cl.Call(ctx, CmdVerify, struct{}{}, &vr); err != nil {
		t.Fatal(err)
	}
	if vr.OK || vr.Ops != 4 || len(vr.Damaged) != 1 || vr.Damaged[0].Key != "blob/3" || len(vr.Quarantined) != 1 ||
		!strings.Contains(vr.Damaged[0].Reason, "checksum") || vr.Agent != "site-1" {
		t.Fatalf("verify after damage: %+v", vr)
	}
	var ls agent.LinkStatus
	if err := cl.Call(ctx, CmdStatus, nil, &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Quarantined.Ops != 1 || !strings.Contains(ls.Damage, `"blob/3"`) || ls.Backlog["normal"].Ops != 4 {
		t.Fatalf("status after damage: quarantined %+v, damage %q, backlog %+v", ls.Quarantined, ls.Damage, ls.Backlog)
	}
	var st StatsResponse
	if err := cl.Call(ctx, CmdStats, nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Outbox.Quarantined.Ops != 1 || st.Outbox.Quarantined.Bytes != 48<<10 || st.Outbox.Drops["damaged"] != 1 || st.Outbox.Ops != 4 {
		t.Fatalf("stats after damage: %+v", st.Outbox)
	}

	wantStatus(t, cl.Call(ctx, CmdPurge, PurgeRequest{}, nil), http.StatusBadRequest, "bad_request")
	wantStatus(t, cl.Call(ctx, CmdPurge, PurgeRequest{IDs: []string{"nope"}}, nil), http.StatusBadRequest, "bad_request")
	var pr PurgeResponse
	if err := cl.Call(ctx, CmdPurge, PurgeRequest{IDs: []string{vr.Damaged[0].ID.String()}}, &pr); err != nil || pr.Ops != 1 || pr.Bytes != 48<<10 {
		t.Fatalf("purge: %+v, %v", pr, err)
	}
	if err := cl.Call(ctx, CmdVerify, nil, &vr); err != nil || !vr.OK || vr.Ops != 4 {
		t.Fatalf("verify after the purge: %+v, %v", vr, err)
	}
	var after agent.LinkStatus
	if err := cl.Call(ctx, CmdStatus, nil, &after); err != nil || after.Damage != "" || after.Quarantined.Ops != 0 {
		t.Fatalf("status after the purge: quarantined %+v, damage %q, %v", after.Quarantined, after.Damage, err)
	}
}
