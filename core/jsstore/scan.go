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
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		msgs, err := c.FetchNoWait(int(min(left, uint64(batch))))
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
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("scan: %w", err)
		}
		if got == 0 {
			return nil // the rest was removed meanwhile
		}
		left -= uint64(got)
	}
	return nil
}

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
