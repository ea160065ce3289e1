package jsstore

import (
	"cmp"
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
// filter, start and HeadersOnly): at least those the stream's leader held
// when the scan began, so every write acknowledged before it. It reads
// over an ephemeral consumer that it deletes at the end. fn returning
// errStop ends the scan early. Messages removed while the scan runs are
// skipped.
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
// from a new consumer that starts after the last message handed over.
//
// On a replicated stream the consumer (one replica, in memory) is placed
// on any node of the stream, which may be a follower that has not yet
// stored what the leader acknowledged; it sees fewer messages. So a scan
// that reaches the end of what its consumer saw asks the leader for the
// last message it holds that matches (catchUp) and waits for the consumer
// to deliver up to it (docs/jetstream.md, "Reading what was written").
func (s *Store) scanBatch(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, batch int, fn func(jetstream.Msg) error) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = time.Minute
	replicated := s.cfg.Replicas > 1
	var latest *lastPerSubject
	if replicated && cfg.DeliverPolicy == jetstream.DeliverLastPerSubjectPolicy {
		// A lagging consumer gives an older message of a subject first,
		// and its newer one once caught up: only the newest is handed on.
		latest = &lastPerSubject{idx: make(map[string]int)}
		fn, latest.fn = latest.add, fn
	}
	sc := scanner{s: s, st: st, fn: fn, batch: batch}
	defer sc.deleteConsumer(ctx)
	if err := sc.open(ctx, cfg); err != nil {
		return err
	}
	sc.left = sc.info.NumPending
	err := sc.drain(ctx, &cfg)
	if err == nil && !sc.stopped && replicated {
		err = sc.catchUp(ctx, &cfg)
	}
	if err == nil && latest != nil {
		err = latest.flush()
	}
	return err
}

// drain hands over the sc.left messages still pending at the consumer,
// opening a new consumer after the last one handed over when messages
// went missing between the server and this client.
func (sc *scanner) drain(ctx context.Context, cfg *jetstream.ConsumerConfig) error {
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
			return fmt.Errorf("scan: messages lost between NATS and this core %d times in a row; the link to NATS is too slow for the store's timeout %v (raise timeout in the store block)", restarts-1, sc.s.cfg.Timeout)
		}
		sc.deleteConsumer(ctx)
		if sc.last > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, sc.last+1, nil
		}
		if err := sc.open(ctx, *cfg); err != nil {
			return err
		}
		sc.left = min(sc.left, sc.info.NumPending)
	}
	return nil
}

// catchUp makes a scan of a replicated stream complete: it asks the
// stream's leader for the last message matching the scan and, while the
// scan has not handed that one over, waits for the consumer's node to
// store it and hands over what it delivers. A message the leader removed
// meanwhile is not waited for: before each wait the leader is asked
// whether one the scan lacks is still there.
func (sc *scanner) catchUp(ctx context.Context, cfg *jetstream.ConsumerConfig) error {
	want, err := sc.leaderNext(ctx, cfg, 0)
	if err != nil || want == 0 {
		return err
	}
	if cfg.DeliverPolicy == jetstream.DeliverLastPerSubjectPolicy {
		// A last-per-subject consumer on a node that lagged did not
		// deliver the messages its node stored after it was created,
		// in 10 s (nats-server 2.15.3, TestReplicatedReadsWhatItWrote):
		// go on with a consumer of every message after the last one
		// handed over. lastPerSubject keeps the newest of each subject.
		sc.deleteConsumer(ctx)
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, sc.last+1
		if err := sc.open(ctx, *cfg); err != nil {
			return err
		}
	}
	wait := time.Millisecond
	for range maxCatchUpRounds {
		info, err := sc.c.Info(ctx)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if info.NumPending > 0 {
			sc.left = info.NumPending
			if err := sc.drain(ctx, cfg); err != nil || sc.stopped || sc.last >= want {
				return err
			}
			continue
		}
		if next, err := sc.leaderNext(ctx, cfg, sc.last+1); err != nil || next == 0 || next > want {
			return err // removed meanwhile: the scan has all the leader holds up to want
		}
		if err := pause(ctx, wait); err != nil {
			return fmt.Errorf("scan: the NATS node of its consumer has not stored message %d of stream %s, which the stream's leader holds: %w",
				want, sc.st.CachedInfo().Config.Name, err)
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	return fmt.Errorf("scan: the NATS node of its consumer has not stored message %d of stream %s after %d checks", want, sc.st.CachedInfo().Config.Name, maxCatchUpRounds)
}

// maxNoResponders bounds the pulls in a row that find no responder, with
// pauses of 1, 2, ... ms between them: about 1 s.
const maxNoResponders = 45

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxCatchUpRounds bounds catchUp's checks of its consumer (besides the
// scan's context): a few seconds of pauses.
const maxCatchUpRounds = 100

// leaderNext asks the stream's leader (a message get that is not direct:
// only the leader answers it) for the sequence of a message matching the
// scan that the scan has not handed over: from 0, the last one; from a
// sequence, the first at or after it. 0 when there is none, or none the
// scan's start would include.
func (sc *scanner) leaderNext(ctx context.Context, cfg *jetstream.ConsumerConfig, from uint64) (uint64, error) {
	filter := cmp.Or(cfg.FilterSubject, ">")
	var m *jetstream.RawStreamMsg
	err := sc.s.retryTransient(ctx, func() (err error) {
		if from == 0 {
			m, err = sc.st.GetLastMsgForSubject(ctx, filter)
		} else {
			m, err = sc.st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(filter))
		}
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("scan: ask the stream's leader: %w", err)
	}
	if m.Sequence <= sc.last || m.Sequence < cfg.OptStartSeq || (cfg.OptStartTime != nil && m.Time.Before(*cfg.OptStartTime)) {
		return 0, nil
	}
	return m.Sequence, nil
}

// lastPerSubject keeps the newest message of each subject a scan hands
// over and hands them on to fn at the end, in the order of their first
// sighting.
type lastPerSubject struct {
	fn   func(jetstream.Msg) error
	idx  map[string]int
	msgs []jetstream.Msg
}

func (l *lastPerSubject) add(m jetstream.Msg) error {
	if i, ok := l.idx[m.Subject()]; ok {
		l.msgs[i] = m
		return nil
	}
	l.idx[m.Subject()] = len(l.msgs)
	l.msgs = append(l.msgs, m)
	return nil
}

func (l *lastPerSubject) flush() error {
	for _, m := range l.msgs {
		if err := l.fn(m); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
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

	stopped bool // fn ended the scan (errStop)
	noResp  int  // pulls in a row that found no responder
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
		sc.stopped = true
		return true, false, nil
	}
	if ferr != nil {
		return true, false, ferr
	}
	if err := msgs.Error(); errors.Is(err, nats.ErrNoResponders) && got == 0 {
		// The consumer's node is not yet known to the node this core is
		// connected to (the interest in its pull subject travels between
		// the nodes after the consumer was created): ask again.
		if sc.noResp++; sc.noResp > maxNoResponders {
			return true, false, fmt.Errorf("scan: its consumer did not answer %d pulls in a row: %w", sc.noResp-1, err)
		}
		return false, false, pause(ctx, time.Duration(sc.noResp)*time.Millisecond)
	}
	sc.noResp = 0
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

// createConsumer creates a scan's consumer, retrying while the stream
// elects a leader (retryTransient).
func (s *Store) createConsumer(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig) (c jetstream.Consumer, err error) {
	err = s.retryTransient(ctx, func() error {
		c, err = st.CreateConsumer(ctx, cfg)
		return err
	})
	return c, err
}

// retryTransient runs req until it succeeds or fails otherwise than
// transiently. While a stream elects a new leader (a NATS node went away)
// a request finds no responder for a few seconds: that is retried, with a
// short pause, for up to the store's Timeout, so that a read during a
// failover waits for it rather than fails.
func (s *Store) retryTransient(ctx context.Context, req func() error) error {
	deadline := time.Now().Add(s.cfg.Timeout)
	wait := 50 * time.Millisecond
	for {
		err := req()
		if err == nil || !transient(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		if perr := pause(ctx, wait); perr != nil {
			return errors.Join(err, perr)
		}
		wait = min(2*wait, time.Second)
	}
}

// transient reports whether err is what JetStream answers while a
// stream's leader is being elected.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}
