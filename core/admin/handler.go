package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
)

// Handler serves the admin API (see the package doc) for store s. Failures
// to write an answer whose status is already sent are logged to log.
func Handler(s core.Backend, log hclog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := StoreReader{Store: s}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/agents/live", liveHandler(o.live))
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, req *http.Request) {
		agents, err := r.Agents(req.Context())
		writeJSON(w, jsonhttp.NonNil(agents), err)
	})
	mux.HandleFunc("GET /v1/keys", prefixList(r.Keys))
	mux.HandleFunc("GET /v1/get", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		v, data, err := r.current(q.Get("agent"), q.Get("key"))
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		w.Header().Set(HeaderVersion, strconv.FormatUint(v.Version, 10))
		if err := writeData(w, v.OpID, v.Hash, v.Size, data); err != nil {
			// The status is sent; the client sees a short body.
			log.Warn("get: data not fully written", "agent", q.Get("agent"), "key", q.Get("key"), "error", err)
		}
	})
	mux.HandleFunc("GET /v1/event", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		seq, err := strconv.ParseUint(q.Get("seq"), 10, 64)
		if err != nil {
			writeJSON(w, nil, fmt.Errorf("%w: seq %q: want an event sequence number", core.ErrInvalid, q.Get("seq")))
			return
		}
		e, data, err := r.event(q.Get("agent"), seq)
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		w.Header().Set(HeaderSeq, strconv.FormatUint(e.Seq, 10))
		if err := writeData(w, e.OpID, e.Hash, e.Size, data); err != nil {
			log.Warn("get event: data not fully written", "agent", q.Get("agent"), "seq", seq, "error", err)
		}
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		var from uint64
		if f := q.Get("from"); f != "" {
			var err error
			if from, err = strconv.ParseUint(f, 10, 64); err != nil {
				writeJSON(w, nil, fmt.Errorf("%w: from %q: want an event sequence number", core.ErrInvalid, f))
				return
			}
		}
		n, err := queryLimit(q, 100)
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		evs, err := r.Events(req.Context(), q.Get("agent"), from, n)
		writeJSON(w, jsonhttp.NonNil(evs), err)
	})
	mux.HandleFunc("GET /v1/summaries", prefixList(r.Summaries))
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, req *http.Request) {
		st, err := r.Stats(req.Context())
		writeJSON(w, st, err)
	})
	return mux
}

// Headers of a /v1/get and a /v1/event answer.
const (
	HeaderOp      = "X-Edge-Sync-Op"
	HeaderVersion = "X-Edge-Sync-Version" // /v1/get
	HeaderSHA256  = "X-Edge-Sync-Sha256"
	HeaderSeq     = "X-Edge-Sync-Seq" // /v1/event
)

// prefixList answers a list of an agent's keys under a prefix (/v1/keys,
// /v1/summaries): the agent, prefix and limit parameters, read by list.
func prefixList[T any](list func(ctx context.Context, agent, prefix string, n int) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		n, err := queryLimit(q, 1000)
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		xs, err := list(req.Context(), q.Get("agent"), q.Get("prefix"), n)
		writeJSON(w, jsonhttp.NonNil(xs), err)
	}
}

// writeData answers with stored data (a key's or an event's) after the
// headers every such answer has: the op that stored it, its hash, its
// size. An error means the status was sent and the body was cut short.
func writeData(w http.ResponseWriter, op edgesync.OpID, hash [32]byte, size int64, data io.Reader) error {
	w.Header().Set(HeaderOp, op.String())
	w.Header().Set(HeaderSHA256, fmt.Sprintf("%x", hash))
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err := io.Copy(w, data)
	return err
}

// queryLimit reads the limit parameter: def when absent, capped at
// MaxLimit.
func queryLimit(q url.Values, def int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: limit %q: want a positive number", core.ErrInvalid, s)
	}
	return min(n, MaxLimit), nil
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v, or err with its status. A failed write means the
// client has gone; there is no one left to tell.
func writeJSON(w http.ResponseWriter, v any, err error) {
	status := http.StatusOK
	if err != nil {
		status = http.StatusInternalServerError
		switch {
		case errors.Is(err, core.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, core.ErrInvalid):
			status = http.StatusBadRequest
		}
		v = errorBody{Error: err.Error()}
	}
	b, merr := json.Marshal(v)
	if merr != nil {
		status = http.StatusInternalServerError
		// Marshalling one string cannot fail.
		b, _ = json.Marshal(errorBody{Error: "encode answer: " + merr.Error()})
	}
	jsonhttp.Write(w, status, b)
}
