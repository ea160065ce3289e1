package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// AdminHandler serves read-only views of the store for `edge-sync core ls`,
// `get` and `tail` while the core runs (bbolt's file lock keeps a second
// process out). The core serves it on a unix socket closed to other users.
//
//	GET /v1/agents
//	GET /v1/keys?agent=A&prefix=P&limit=N
//	GET /v1/get?agent=A&key=K            the data, with X-Edge-Sync-* headers
//	GET /v1/events?agent=A&from=SEQ&limit=N
//	GET /v1/summaries?agent=A&prefix=P&limit=N
//	GET /v1/stats
func AdminHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		agents, err := s.Agents()
		writeJSON(w, agents, err)
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		vs, err := s.Keys(q.Get("agent"), q.Get("prefix"), atoiDefault(q.Get("limit"), 1000))
		out := make([]VersionInfo, len(vs))
		for i, v := range vs {
			out[i] = infoOf(v)
		}
		writeJSON(w, out, err)
	})
	mux.HandleFunc("GET /v1/get", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		v, obj, err := s.Current(q.Get("agent"), q.Get("key"))
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		w.Header().Set("X-Edge-Sync-Op", v.OpID.String())
		w.Header().Set("X-Edge-Sync-Version", strconv.FormatUint(v.Version, 10))
		w.Header().Set("X-Edge-Sync-Sha256", fmt.Sprintf("%x", v.Hash))
		w.Header().Set("Content-Length", strconv.FormatInt(v.Size, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, io.NewSectionReader(obj, 0, v.Size))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, _ := strconv.ParseUint(q.Get("from"), 10, 64)
		evs, err := s.Events(q.Get("agent"), from, atoiDefault(q.Get("limit"), 100))
		out := make([]EventInfo, len(evs))
		for i, e := range evs {
			out[i] = EventInfo{Seq: e.Seq, OpID: e.OpID, Key: e.Key, Size: e.Size, SHA256: fmt.Sprintf("%x", e.Hash), Priority: e.Priority, Stored: e.Stored}
		}
		writeJSON(w, out, err)
	})
	mux.HandleFunc("GET /v1/summaries", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sums, err := s.Summaries(q.Get("agent"), q.Get("prefix"), atoiDefault(q.Get("limit"), 1000))
		writeJSON(w, sums, err)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Stats()
		writeJSON(w, st, err)
	})
	return mux
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

func infoOf(v Version) VersionInfo {
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

func atoiDefault(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return min(n, 100_000)
	}
	return def
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrInvalid):
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
