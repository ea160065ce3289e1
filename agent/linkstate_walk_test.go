package agent

import (
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// TestStatusClassIsTheSendersAcrossAWalk (issue #14 item 4): while the
// link walks lte → satellite-geo → lte and the class follows it, every
// status read whose parameters' generation held shows the sender's
// parameters, and they are the parameters of the class it shows (its
// profile's mode, compression and interval), never another class's.
func TestStatusClassIsTheSendersAcrossAWalk(t *testing.T) {
	_, a, conn := shapedAgent(t, linksim.LTE())
	e, err := a.endpoint("core")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[edgesync.LinkClass]int{}
	// check reads status and the sender's parameters once and fails if
	// they disagree; it reports the class shown.
	check := func() edgesync.LinkClass {
		t.Helper()
		for range 100 {
			sp, gen, _ := e.params()
			st := mustStatus(t, a)
			if _, again, _ := e.params(); again != gen {
				continue
			}
			if st.Params != sp {
				t.Fatalf("status shows class %v with %+v; the sender uses %+v", st.Class, st.Params, sp)
			}
			want := a.Config().Profiles[st.Class].Params
			if sp.Mode != want.Mode || sp.Compression != want.Compression || sp.Interval != want.Interval {
				t.Fatalf("status shows class %v; the sender's parameters %+v are not that class's %+v", st.Class, sp, want)
			}
			seen[st.Class]++
			return st.Class
		}
		t.Fatal("the parameters changed during each of 100 reads")
		return 0
	}
	walk := []struct {
		profile linksim.Profile
		class   edgesync.LinkClass
	}{{linksim.LTE(), edgesync.Mobile}, {linksim.SatelliteGEO(), edgesync.Satellite}, {linksim.LTE(), edgesync.Mobile}}
	for i, st := range walk {
		if i > 0 { // the first is the socket's profile from the start
			if err := conn().SetProfile(st.profile); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, 20*time.Second, "class "+st.class.String()+" on "+st.profile.Name, func() bool { return check() == st.class })
	}
	if seen[edgesync.Mobile] == 0 || seen[edgesync.Satellite] == 0 {
		t.Fatalf("classes seen %v: the walk did not move the class", seen)
	}
}
