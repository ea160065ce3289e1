package lane

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func traceSession(tb testing.TB, s *Session) func() {
	if os.Getenv("LANE_TRACE") == "" {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			s.mu.Lock()
			sn := s.snd
			fmt.Fprintf(os.Stderr, "t=%.1f state=%s inflight=%d cwnd=%.0f pace=%.2fMb btlbw=%.2fMb acked=%d sent=%d retx=%d lost=%d srtt=%v rttvar=%v records=%d win=%d\n",
				time.Since(start).Seconds(), sn.m.state, sn.inBytes, sn.m.cwnd(), sn.m.pacingRate()*8/1e6, sn.m.btlbw*8/1e6,
				sn.stats.bytesAcked, sn.stats.packets, sn.stats.retransmits, sn.stats.lost, sn.srtt, sn.rttvar, len(sn.sent), sn.peerWindow)
			s.mu.Unlock()
		}
	}()
	return func() { close(stop); <-done }
}
