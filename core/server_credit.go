package core

import (
	"sync"

	"github.com/quic-go/quic-go"
)

// streamCredits gives the agent the credit of a connection's finished op
// streams back in batches, so that one packet of MAX_STREAMS frames
// grants the agent new streams in place of several finished ones
// (docs/core.md, "Packets per op").
//
// quic-go grants a new stream the moment an old one completes: when the
// agent's ACK of the core's answer arrives, which for an agent sending
// small ops one after the other is in the packet of its next op. Granted
// then, each op's MAX_STREAMS goes out at once in a packet of its own,
// and the agent acks it with another (it acks every second packet that
// asks for an ACK): four packets per small op where two carry it. The
// listener therefore runs with quic.Config.RequireStreamCreditRelease,
// and finish holds each stream's credit; once more than batch are held,
// all but the last (whose answer the agent has not acked yet, so that it
// would be granted alone later) are released at once. At most batch
// credits are held: streams of MaxStreams the agent cannot open
// meanwhile, until more of its streams finish.
type streamCredits struct {
	batch int
	mu    sync.Mutex
	held  []*quic.Stream
}

// newStreamCredits holds up to an eighth of maxStreams; with fewer than
// 16 streams each credit is released as its stream finishes, as quic-go
// does by itself.
func newStreamCredits(maxStreams int) *streamCredits {
	return &streamCredits{batch: maxStreams / 8}
}

// finished holds str's credit, and releases the ones held before it if
// they are more than the batch.
func (c *streamCredits) finished(str *quic.Stream) {
	if c.batch < 2 {
		str.ReleaseStreamCredit()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = append(c.held, str)
	if len(c.held) <= c.batch {
		return
	}
	last := len(c.held) - 1
	for _, s := range c.held[:last] {
		s.ReleaseStreamCredit() // quic-go calls nothing of ours back
	}
	c.held[0] = c.held[last]
	clear(c.held[1:])
	c.held = c.held[:1]
}
