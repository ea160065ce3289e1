package admin

import (
	"context"
	"fmt"
	"io"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
)

// MaxLimit caps the number of entries one call returns.
const MaxLimit = 100_000

// Reader is what the admin API offers. A limit <= 0 or above MaxLimit
// means MaxLimit.
type Reader interface {
	// Agents lists the agents that have sent anything.
	Agents(ctx context.Context) ([]string, error)
	// Keys lists the current versions of an agent's keys under prefix.
	Keys(ctx context.Context, agent, prefix string, limit int) ([]VersionInfo, error)
	// Get writes the current data of an agent's key to w.
	Get(ctx context.Context, agent, key string, w io.Writer) error
	// Events lists an agent's events from sequence number from on.
	Events(ctx context.Context, agent string, from uint64, limit int) ([]EventInfo, error)
	// GetEvent writes the payload of an agent's event seq to w.
	GetEvent(ctx context.Context, agent string, seq uint64, w io.Writer) error
	// Summaries lists the latest summaries of an agent's keys under prefix.
	Summaries(ctx context.Context, agent, prefix string, limit int) ([]core.Summary, error)
	// Stats returns the store's counters.
	Stats(ctx context.Context) (core.Stats, error)
}

// VersionInfo is a key's current version as `core ls` shows it.
type VersionInfo struct {
	Key      string            `json:"key"`
	OpID     edgesync.OpID     `json:"op"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Priority edgesync.Priority `json:"priority"`
	Stored   time.Time         `json:"stored"`
	Version  uint64            `json:"version"`
}

func versionInfo(v core.Version) VersionInfo {
	return VersionInfo{Key: v.Key, OpID: v.OpID, Size: v.Size, SHA256: fmt.Sprintf("%x", v.Hash), Priority: v.Priority, Stored: v.Stored, Version: v.Version}
}

// EventInfo is an event as `core tail` shows it.
type EventInfo struct {
	Seq      uint64            `json:"seq"`
	OpID     edgesync.OpID     `json:"op"`
	Key      string            `json:"key"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Priority edgesync.Priority `json:"priority"`
	Stored   time.Time         `json:"stored"`
}

func eventInfo(e core.Event) EventInfo {
	return EventInfo{Seq: e.Seq, OpID: e.OpID, Key: e.Key, Size: e.Size, SHA256: fmt.Sprintf("%x", e.Hash), Priority: e.Priority, Stored: e.Stored}
}

// limit applies the Reader's rule to n.
func limit(n int) int {
	if n <= 0 || n > MaxLimit {
		return MaxLimit
	}
	return n
}

// StoreReader reads the admin views from a store the caller opened and
// closes. Its errors are the store's (errors.Is works with
// core.ErrNotFound and core.ErrInvalid).
type StoreReader struct {
	Store core.Backend
}

var _ Reader = StoreReader{}

// Agents lists the agents that have sent anything.
func (r StoreReader) Agents(context.Context) ([]string, error) {
	agents, err := r.Store.Agents()
	if err != nil {
		return nil, err
	}
	return jsonhttp.NonNil(agents), nil
}

// Keys lists the current versions of an agent's keys under prefix.
func (r StoreReader) Keys(_ context.Context, agent, prefix string, n int) ([]VersionInfo, error) {
	vs, err := r.Store.Keys(agent, prefix, limit(n))
	return infos(vs, err, versionInfo)
}

// Get writes the current data of an agent's key to w.
func (r StoreReader) Get(_ context.Context, agent, key string, w io.Writer) error {
	_, data, err := r.current(agent, key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return nil
}

// current returns the current version of an agent's key and its data.
func (r StoreReader) current(agent, key string) (core.Version, io.Reader, error) {
	v, obj, err := r.Store.Current(agent, key)
	if err != nil {
		return v, nil, err
	}
	return v, io.NewSectionReader(obj, 0, v.Size), nil
}

// GetEvent writes the payload of an agent's event seq to w.
func (r StoreReader) GetEvent(_ context.Context, agent string, seq uint64, w io.Writer) error {
	_, data, err := r.event(agent, seq)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		return fmt.Errorf("get event %d: %w", seq, err)
	}
	return nil
}

// event returns an agent's event seq and its payload.
func (r StoreReader) event(agent string, seq uint64) (core.Event, io.Reader, error) {
	e, obj, err := r.Store.EventData(agent, seq)
	if err != nil {
		return e, nil, err
	}
	return e, obj, nil
}

// Events lists an agent's events from sequence number from on.
func (r StoreReader) Events(_ context.Context, agent string, from uint64, n int) ([]EventInfo, error) {
	evs, err := r.Store.Events(agent, from, limit(n))
	return infos(evs, err, eventInfo)
}

// infos turns what the store listed into the API's views of it, [] for
// none; a failed list passes its error on.
func infos[T, V any](xs []T, err error, view func(T) V) ([]V, error) {
	if err != nil {
		return nil, err
	}
	out := make([]V, len(xs))
	for i, x := range xs {
		out[i] = view(x)
	}
	return out, nil
}

// Summaries lists the latest summaries of an agent's keys under prefix.
func (r StoreReader) Summaries(_ context.Context, agent, prefix string, n int) ([]core.Summary, error) {
	sums, err := r.Store.Summaries(agent, prefix, limit(n))
	if err != nil {
		return nil, err
	}
	return jsonhttp.NonNil(sums), nil // as the socket answers: [] for none
}

// Stats returns the store's counters.
func (r StoreReader) Stats(context.Context) (core.Stats, error) { return r.Store.Stats() }
