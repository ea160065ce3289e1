package jsstore

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opConns is how many NATS connections a core sends the requests of its
// ops' commits over. With one, every request of every agent's op takes
// that connection's lock, which nats.go's flusher holds across its socket
// writes: with 100 agents most of the core's time went waiting for it
// (docs/jetstream.md, "Connections").
const opConns = 4

// opConn is one of them, with the handles an op's commit uses bound to it.
type opConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	applied jetstream.KeyValue
	stateS  jetstream.Stream
	group   group // writes of ops' commits, sent in groups (group.go)
	acks    acks  // their acknowledgements (acks.go)
}

// openConns connects the connections beside the store's own, which is
// the first; a read-only store uses its own only.
func (s *Store) openConns(ctx context.Context, url string, opts []nats.Option) error {
	n := opConns
	if s.cfg.ReadOnly {
		n = 1
	}
	for i := range n {
		nc := s.nc
		if i > 0 {
			var err error
			if nc, err = nats.Connect(url, opts...); err != nil {
				return fmt.Errorf("connect: %w", err)
			}
		}
		c := &opConn{nc: nc}
		s.conns = append(s.conns, c) // closed by closeConns, also on failure below
		if err := c.acks.start(nc); err != nil {
			return fmt.Errorf("subscribe to acknowledgements: %w", err)
		}
		var err error
		if c.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(s.cfg.Timeout), jetstream.WithPublishAsyncTimeout(s.cfg.Timeout)); err != nil {
			return err
		}
		if c.applied, err = c.js.KeyValue(ctx, s.n.bucket(bucketApplied)); err != nil {
			return fmt.Errorf("bucket %s: %w", s.n.bucket(bucketApplied), notFound(err))
		}
		if c.stateS, err = c.js.Stream(ctx, kvStream(s.n.bucket(bucketState))); err != nil {
			return fmt.Errorf("bucket %s: %w", s.n.bucket(bucketState), notFound(err))
		}
	}
	return nil
}

// closeConns closes the connections openConns made (not the store's own).
func (s *Store) closeConns() {
	for _, c := range s.conns {
		c.acks.stop()
		if c.nc != s.nc {
			c.nc.Close()
		}
	}
}

// oc returns the connection for an op's next request, taking them in turn.
func (s *Store) oc() *opConn {
	return s.conns[s.nextConn.Add(1)%uint64(len(s.conns))]
}
