package jsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errStop ends a scan early without an error.
var errStop = errors.New("stop scan")

// scanBatch is how many messages one pull of a scan asks for.
const scanBatch = 256

// scan hands fn, oldest first, the messages of st that match cfg (its
// filter, start and HeadersOnly) and were there when the scan began, over
// an ephemeral consumer that it deletes at the end. fn returning errStop
// ends the scan early. Messages removed while the scan runs are skipped.
func (s *Store) scan(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, fn func(jetstream.Msg) error) error {
	return s.scanBatch(ctx, st, cfg, scanBatch, fn)
}

// scanBatch is scan pulling batch messages at a time.
func (s *Store) scanBatch(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, batch int, fn func(jetstream.Msg) error) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = time.Minute
	c, err := s.createConsumer(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	info := c.CachedInfo()
	defer func() {
		// An ephemeral consumer left behind ends by itself after its
		// inactive threshold; deleting it is tidiness.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		_ = st.DeleteConsumer(dctx, info.Name)
		cancel()
	}()
	left := info.NumPending
	empty := 0
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A pull that waits, not FetchNoWait: the server may answer a
		// pull without waiting "no messages" ahead of messages it is
		// delivering to it, which then arrive after the pull ended and
		// are lost to the scan (seen under -race: a blob read short by
		// three chunks the consumer counted as delivered). A pull for
		// no more than the consumer holds ends when they are all here.
		msgs, err := c.Fetch(int(min(left, uint64(batch))), jetstream.FetchMaxWait(scanWait))
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		got := 0
		var ferr error
		for m := range msgs.Messages() { // drained fully, so that the fetch ends
			got++
			if ferr == nil {
				ferr = fn(m)
			}
		}
		if ferr != nil {
			if errors.Is(ferr, errStop) {
				return nil
			}
			return ferr
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("scan: %w", err)
		}
		if got > 0 {
			left -= uint64(got)
			empty = 0
			continue
		}
		// Nothing came within scanWait: removed meanwhile, or a slow
		// server; the consumer's count tells which.
		ci, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if empty++; ci.NumPending == 0 || empty >= scanWaits {
			return nil // the rest was removed meanwhile
		}
		left = ci.NumPending
	}
	return nil
}

// scanWait bounds one pull of a scan; after scanWaits pulls in a row that
// got nothing although the consumer counts messages, the scan ends.
const (
	scanWait  = time.Second
	scanWaits = 5
)

// count returns how many messages of st match filter.
func (s *Store) count(ctx context.Context, st jetstream.Stream, filter string) (uint64, error) {
	c, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, Replicas: 1, InactiveThreshold: time.Minute,
		FilterSubject: filter, HeadersOnly: true,
	})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", filter, err)
	}
	info := c.CachedInfo()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	_ = st.DeleteConsumer(dctx, info.Name)
	cancel()
	return info.NumPending, nil
}

// createConsumer creates a scan's consumer. While a stream elects a new
// leader (a NATS node went away) the request finds no responder for a
// few seconds: that is retried, with a short pause, for up to the
// store's Timeout, so that a read during a failover waits for it rather
// than fails.
func (s *Store) createConsumer(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	deadline := time.Now().Add(s.cfg.Timeout)
	pause := 50 * time.Millisecond
	for {
		c, err := st.CreateConsumer(ctx, cfg)
		if err == nil || !transient(err) || time.Now().Add(pause).After(deadline) {
			return c, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// transient reports whether err is what JetStream answers while a
// stream's leader is being elected.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}
