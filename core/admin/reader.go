package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edge-sync/edge-sync/core"
)

// storeOpenTimeout bounds the wait for the store file's lock, held while a
// core runs.
const storeOpenTimeout = 2 * time.Second

// SocketOrStore reads a core's data through its admin socket while the
// core runs, and from its store while it does not: each call asks the
// socket first and, on ErrNoCore, opens the store for that call only.
type SocketOrStore struct {
	client *Client
	open   func() (core.Backend, error)
}

var _ Reader = (*SocketOrStore)(nil)

// NewSocketOrStore returns a reader of the core whose admin socket is
// socket and whose store file is storePath. It connects to nothing yet.
func NewSocketOrStore(socket, storePath string) *SocketOrStore {
	return NewSocketOrOpen(socket, func() (core.Backend, error) {
		if _, err := os.Stat(storePath); err != nil {
			return nil, fmt.Errorf("no store at %s", storePath)
		}
		s, err := core.Open(storePath, core.Config{OpenTimeout: storeOpenTimeout})
		if err != nil {
			return nil, fmt.Errorf("%w (is a core running without its admin socket?)", err)
		}
		return s, nil
	})
}

// NewSocketOrOpen is NewSocketOrStore for any Backend: open opens the
// store when no core answers on socket (for a JetStream store, which
// several processes share, it connects to JetStream).
func NewSocketOrOpen(socket string, open func() (core.Backend, error)) *SocketOrStore {
	return &SocketOrStore{client: NewClient(socket), open: open}
}

// Close releases the client's idle connections (see Client.Close).
func (r *SocketOrStore) Close() error { return r.client.Close() }

// either runs f against the running core, or against the store when no
// core answers.
func either[T any](r *SocketOrStore, f func(Reader) (T, error)) (T, error) {
	v, err := f(r.client)
	if !errors.Is(err, ErrNoCore) {
		return v, err
	}
	s, oerr := r.open()
	if oerr != nil {
		return v, fmt.Errorf("%w, and the store: %w", err, oerr)
	}
	v, err = f(StoreReader{Store: s})
	if err != nil {
		err = fmt.Errorf("core store: %w", err)
	}
	if cerr := s.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("core store: close: %w", cerr)
	}
	return v, err
}

// Agents lists the agents that have sent anything.
func (r *SocketOrStore) Agents(ctx context.Context) ([]string, error) {
	return either(r, func(rd Reader) ([]string, error) { return rd.Agents(ctx) })
}

// Keys lists the current versions of an agent's keys under prefix.
func (r *SocketOrStore) Keys(ctx context.Context, agent, prefix string, n int) ([]VersionInfo, error) {
	return either(r, func(rd Reader) ([]VersionInfo, error) { return rd.Keys(ctx, agent, prefix, n) })
}

// Get writes the current data of an agent's key to w.
func (r *SocketOrStore) Get(ctx context.Context, agent, key string, w io.Writer) error {
	_, err := either(r, func(rd Reader) (struct{}, error) { return struct{}{}, rd.Get(ctx, agent, key, w) })
	return err
}

// GetEvent writes the payload of an agent's event seq to w.
func (r *SocketOrStore) GetEvent(ctx context.Context, agent string, seq uint64, w io.Writer) error {
	_, err := either(r, func(rd Reader) (struct{}, error) { return struct{}{}, rd.GetEvent(ctx, agent, seq, w) })
	return err
}

// Events lists an agent's events from sequence number from on.
func (r *SocketOrStore) Events(ctx context.Context, agent string, from uint64, n int) ([]EventInfo, error) {
	return either(r, func(rd Reader) ([]EventInfo, error) { return rd.Events(ctx, agent, from, n) })
}

// Summaries lists the latest summaries of an agent's keys under prefix.
func (r *SocketOrStore) Summaries(ctx context.Context, agent, prefix string, n int) ([]core.Summary, error) {
	return either(r, func(rd Reader) ([]core.Summary, error) { return rd.Summaries(ctx, agent, prefix, n) })
}

// Stats returns the store's counters.
func (r *SocketOrStore) Stats(ctx context.Context) (core.Stats, error) {
	return either(r, func(rd Reader) (core.Stats, error) { return rd.Stats(ctx) })
}
