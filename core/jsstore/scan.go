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
//
// Each pull waits for its messages (up to the store's Timeout): a pull
// that does not wait is cut short by the NATS client after a second,
// which on a slow link to NATS would read as the end of the data. A pull
// that ends short is checked with the server: nothing pending means the
// rest was removed; messages the server delivered but this client never
// handed over (they arrived after the pull had ended) are read again
// from a new consumer that starts after the last message handled.
func (s *Store) scanBatch(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, batch int, fn func(jetstream.Msg) error) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = time.Minute
	sc := scanner{s: s, st: st, fn: fn, batch: batch}
	defer sc.deleteConsumer(ctx)
	if err := sc.open(ctx, cfg); err != nil {
		return err
	}
	sc.left = sc.info.NumPending
	for restarts := 0; sc.left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, lost, err := sc.pull(ctx)
		if err != nil || done {
			return err
		}
		if !lost {
			continue
		}
		if sc.got > 0 {
			restarts = 0 // this consumer made progress
		}
		if restarts++; restarts > maxScanRestarts {
			return fmt.Errorf("scan: messages lost between NATS and this core %d times in a row; the link to NATS is too slow for the store's timeout %v (raise timeout in the store block)", restarts-1, s.cfg.Timeout)
		}
		sc.deleteConsumer(ctx)
		if sc.last > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, sc.last+1, nil
		}
		if err := sc.open(ctx, cfg); err != nil {
			return err
		}
		sc.left = min(sc.left, sc.info.NumPending)
	}
	return nil
}

// maxScanRestarts bounds how often in a row one scan opens a new
// consumer, without reading a message, after messages went missing
// between the server and this client.
const maxScanRestarts = 5

// scanner is the state of one scan: its consumer, how many messages are
// left of those there at the start, and where it is.
type scanner struct {
	s     *Store
	st    jetstream.Stream
	fn    func(jetstream.Msg) error
	batch int

	c    jetstream.Consumer
	info *jetstream.ConsumerInfo
	left uint64
	got  uint64 // messages handed over from this consumer
	last uint64 // stream sequence of the last message handed over
}

func (sc *scanner) open(ctx context.Context, cfg jetstream.ConsumerConfig) error {
	c, err := sc.s.createConsumer(ctx, sc.st, cfg)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	sc.c, sc.info, sc.got = c, c.CachedInfo(), 0
	return nil
}

// deleteConsumer deletes the scan's consumer. An ephemeral consumer left
// behind ends by itself after its inactive threshold; deleting it is
// tidiness, so a failure is not reported.
func (sc *scanner) deleteConsumer(ctx context.Context) {
	if sc.c == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.s.cfg.Timeout)
	_ = sc.st.DeleteConsumer(dctx, sc.info.Name)
	cancel()
	sc.c = nil
}

// pull fetches the next batch and hands it to fn. done: the scan is over
// (fn stopped it, or nothing is left). lost: the server delivered
// messages this client did not receive, so the consumer must start again.
func (sc *scanner) pull(ctx context.Context) (done, lost bool, err error) {
	want := int(min(sc.left, uint64(sc.batch)))
	fctx, cancel := context.WithTimeout(ctx, sc.s.cfg.Timeout)
	defer cancel()
	msgs, err := sc.c.Fetch(want, jetstream.FetchContext(fctx))
	if err != nil {
		return false, false, fmt.Errorf("scan: %w", err)
	}
	got := 0
	var ferr error
	for m := range msgs.Messages() { // drained fully, so that the fetch ends
		got++
		if ferr != nil {
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			ferr = fmt.Errorf("scan: %w", err)
			continue
		}
		if meta.Sequence.Consumer != sc.got+1 {
			lost = true // delivered to an ended pull; read again from sc.last
			continue
		}
		sc.got++
		sc.left--
		sc.last = meta.Sequence.Stream
		ferr = sc.fn(m)
	}
	if errors.Is(ferr, errStop) {
		return true, false, nil
	}
	if ferr != nil {
		return true, false, ferr
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) &&
		(!errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil) {
		return true, false, fmt.Errorf("scan: %w", err)
	}
	if lost || got == want {
		return sc.left == 0, lost, nil
	}
	// Cut short: removed meanwhile, or delivered after the pull ended.
	info, err := sc.c.Info(ctx)
	if err != nil {
		return true, false, fmt.Errorf("scan: %w", err)
	}
	if info.Delivered.Consumer > sc.got {
		return false, true, nil
	}
	if info.NumPending == 0 {
		return true, false, nil // the rest was removed meanwhile
	}
	sc.left = min(sc.left, info.NumPending)
	return false, false, nil
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
