package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// maxJSONBody bounds the JSON request of every command but the uploads.
const maxJSONBody = 1 << 20

// routes returns the API's handler: POST /v1/COMMAND and GET /v1/health.
func (s *Server) routes() http.Handler {
	cmds := map[string]http.HandlerFunc{
		CmdSend:         s.upload(false),
		CmdQueue:        s.upload(true),
		CmdQuality:      command(s, s.quality),
		CmdSwitch:       command(s, s.switchPin),
		CmdConfig:       command(s, s.config),
		CmdStats:        command(s, s.stats),
		CmdMeasure:      command(s, s.measure),
		CmdStatus:       command(s, s.status),
		CmdHistory:      command(s, s.history),
		CmdTimeline:     command(s, s.timeline),
		CmdNext:         s.next,
		CmdMonitorStart: command(s, s.monitorStart),
		CmdMonitorStop:  command(s, s.monitorStop),
		CmdVerify:       command(s, s.verify),
		CmdPurge:        command(s, s.purge),
		CmdBudgetStatus: command(s, s.budgetStatus),
		CmdBudgetSet:    command(s, s.budgetSet),
		CmdBudgetReset:  command(s, s.budgetReset),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/v1/")
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such path %q: commands are POST /v1/COMMAND", r.URL.Path))
			return
		}
		if name == "health" {
			if r.Method != http.MethodGet {
				writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET /v1/health")
				return
			}
			writeJSON(w, http.StatusOK, Health{Status: "ok", Agent: s.a.Name(), Endpoints: s.a.Endpoints()})
			return
		}
		h, ok := cmds[name]
		if !ok {
			writeError(w, http.StatusNotFound, "unknown_command",
				fmt.Sprintf("unknown command %q; commands: %s", name, strings.Join(Commands(), ", ")))
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST /v1/"+name)
			return
		}
		h(w, r)
	})
}

// upload serves transport.send and transport.bandwidth.sync.queue: the
// parameters are in the query, the summary in a header, the payload is the
// body, streamed into the outbox.
func (s *Server) upload(priorityRequired bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := s.parseUpload(r, priorityRequired)
		if err != nil {
			s.fail(w, err)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("payload of %d bytes is over control.max_body_bytes (%d)", r.ContentLength, s.cfg.MaxBodyBytes))
			return
		}
		n.Payload = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if r.ContentLength >= 0 {
			// The outbox sizes its first buffer by Len, as for a bytes.Reader.
			n.Payload = sizedBody{n.Payload, int(r.ContentLength)}
		}
		op, err := s.a.Enqueue(r.Context(), n)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, SendResponse{ID: op.ID, Endpoint: op.Endpoint, Key: op.Key,
			Priority: op.Priority, Kind: op.Kind.String(), Size: op.Size, ExpiresAt: expiresAt(op)})
	}
}

// sizedBody is a request body of known length.
type sizedBody struct {
	io.Reader
	n int
}

// Len returns the declared length of the body.
func (b sizedBody) Len() int { return b.n }

func (s *Server) parseUpload(r *http.Request, priorityRequired bool) (outbox.NewOp, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "endpoint", "key", "priority", "kind", "ttl":
		default:
			return outbox.NewOp{}, badRequest("unknown query parameter %q (want endpoint, key, priority, kind, ttl)", k)
		}
	}
	n := outbox.NewOp{Endpoint: q.Get("endpoint"), Key: q.Get("key"), Priority: edgesync.Normal}
	if n.Endpoint == "" {
		n.Endpoint = s.a.DefaultEndpoint()
	}
	switch p := q.Get("priority"); {
	case p != "":
		pr, err := edgesync.ParsePriority(p)
		if err != nil {
			return n, badRequest("priority: %v", err)
		}
		n.Priority = pr
	case priorityRequired:
		return n, badRequest("priority is required (critical, schema, high, normal, analytics, background)")
	}
	switch k := q.Get("kind"); k {
	case "", "event":
		n.Kind = edgesync.EventOp
	case "state":
		n.Kind = edgesync.StateOp
	default:
		return n, badRequest("kind %q: want event or state", k)
	}
	if n.Kind == edgesync.StateOp && n.Key == "" {
		return n, badRequest("a state op needs a key")
	}
	if t := q.Get("ttl"); t != "" {
		d, err := units.ParseDuration(t)
		if err != nil || d < 0 {
			return n, badRequest("ttl %q: want a positive duration such as 10m, 24h or 2d", t)
		}
		n.TTL = d
	}
	if sum := r.Header.Get(HeaderSummary); sum != "" {
		b, err := base64.StdEncoding.DecodeString(sum)
		if err != nil {
			return n, badRequest("%s header: want standard base64: %v", HeaderSummary, err)
		}
		n.Summary = b
	}
	return n, nil
}

// command serves a command whose request is the JSON of a Req (see
// decode) and whose answer is the JSON of f's value, or f's error.
func command[Req any](s *Server, f func(r *http.Request, req Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !s.decode(w, r, &req) {
			return
		}
		v, err := f(r, req)
		s.reply(w, v, err)
	}
}

func (s *Server) quality(_ *http.Request, req EndpointRequest) (any, error) {
	return s.a.Quality(req.Endpoint)
}

func (s *Server) measure(r *http.Request, req EndpointRequest) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	return s.a.Measure(ctx, req.Endpoint)
}

func (s *Server) status(_ *http.Request, req EndpointRequest) (any, error) {
	return s.a.Status(req.Endpoint)
}

func (s *Server) switchPin(_ *http.Request, req SwitchRequest) (any, error) {
	if req.To == "" {
		return nil, badRequest(`"to" is required: auto, a link class (fiber, broadband, mobile, satellite, intermittent) or a sync mode (full, full+zstd, delta, delta+zstd, store-and-forward)`)
	}
	pin, err := linkmon.ParsePin(req.To)
	if err != nil {
		return nil, badRequest("to: %v", err)
	}
	if err := s.a.Switch(req.Endpoint, pin); err != nil {
		return nil, err
	}
	return s.a.Status(req.Endpoint)
}

func (s *Server) config(_ *http.Request, req ConfigRequest) (any, error) {
	if (req.Class == "") != (req.Profile == nil) {
		return nil, badRequest(`give both "class" and "profile" to change a class's parameters, or neither to show the configuration`)
	}
	if req.Class != "" {
		c, err := edgesync.ParseLinkClass(req.Class)
		if err != nil {
			return nil, badRequest("class: %v", err)
		}
		if err := s.a.SetProfile(c, *req.Profile); err != nil {
			return nil, badRequest("profile: %v", err)
		}
	}
	return s.a.Config(), nil
}

func (s *Server) stats(*http.Request, struct{}) (any, error) { return statsOf(s.a, nil) }

// statsOf reads a's transport.stats: the endpoints' counters first, then
// the outbox (between, if not nil, runs in between). A sender counts an op
// acked only once the outbox has let it go (agent/sender.go, stored), so
// in this order an op the answer counts acked is never in its outbox too;
// read the other way round, an op acked between the reads was both.
func statsOf(a *agent.Agent, between func()) (StatsResponse, error) {
	eps := a.Stats()
	if between != nil {
		between()
	}
	st, err := a.Outbox().Stats()
	if err != nil {
		return StatsResponse{}, err
	}
	return StatsResponse{Agent: a.Name(), Outbox: outboxStats(st), Endpoints: eps}, nil
}

func outboxStats(st outbox.Stats) OutboxStats {
	o := OutboxStats{Ops: st.Total.Ops, Bytes: st.Total.Bytes, Leased: st.Leased,
		ByPriority: map[string]agent.Backlog{}, Drops: map[string]uint64{}, OldestAge: st.OldestAge,
		MaxOps: st.MaxOps, MaxBytes: st.MaxBytes}
	for _, p := range edgesync.Priorities() {
		o.ByPriority[p.String()] = agent.Backlog{Ops: st.ByPriority[p].Ops, Bytes: st.ByPriority[p].Bytes}
	}
	for r := outbox.Reason(0); r < outbox.NumReasons; r++ {
		o.Drops[r.String()] = st.Drops[r]
	}
	o.Quarantined = agent.Backlog{Ops: st.Quarantined.Ops, Bytes: st.Quarantined.Bytes}
	return o
}

// verify serves transport.outbox.verify: every op is read and checked
// now, and what fails is quarantined.
func (s *Server) verify(r *http.Request, _ struct{}) (any, error) {
	rep, err := s.a.VerifyOutbox(r.Context())
	if rep.Damaged == nil {
		rep.Damaged = []outbox.Damage{}
	}
	if rep.Quarantined == nil {
		rep.Quarantined = []outbox.Damage{}
	}
	rep.Damaged, rep.Quarantined = jsonhttp.NonNil(rep.Damaged), jsonhttp.NonNil(rep.Quarantined)
	return VerifyResponse{Agent: s.a.Name(), OK: rep.OK(), VerifyReport: rep}, err
}

// purge serves transport.outbox.purge.
func (s *Server) purge(_ *http.Request, req PurgeRequest) (any, error) {
	if req.All == (len(req.IDs) > 0) {
		return nil, badRequest(`give "ids" (quarantined ops to delete) or "all": true, not both`)
	}
	ids := make([]edgesync.OpID, len(req.IDs))
	for i, v := range req.IDs {
		id, err := edgesync.ParseOpID(v)
		if err != nil {
			return nil, badRequest("ids: %q: want the 32 hex digits of a quarantined op: %v", v, err)
		}
		ids[i] = id
	}
	c, err := s.a.PurgeQuarantined(ids...)
	return PurgeResponse{Ops: c.Ops, Bytes: c.Bytes}, err
}

func (s *Server) history(_ *http.Request, req HistoryRequest) (any, error) {
	window, err := parseWindow(req.Window)
	if err != nil {
		return nil, err
	}
	ms, err := s.a.History(req.Endpoint, window)
	if ms == nil {
		ms = []linkmon.Measurement{}
	}
	name := req.Endpoint
	if name == "" {
		name = s.a.DefaultEndpoint()
	}
	return HistoryResponse{Endpoint: name, Window: window.String(), Measurements: jsonhttp.NonNil(ms)}, err
}

func (s *Server) timeline(_ *http.Request, req TimelineRequest) (any, error) {
	window, err := parseWindow(req.Window)
	if err != nil {
		return nil, err
	}
	return s.a.Timeline(req.Endpoint, window)
}

// parseWindow reads the window of history and timeline: a positive
// duration (units.ParseDuration), 10m when empty.
func parseWindow(w string) (time.Duration, error) {
	if w == "" {
		return 10 * time.Minute, nil
	}
	d, err := units.ParseDuration(w)
	if err != nil || d <= 0 {
		return 0, badRequest("window %q: want a positive duration such as 10m", w)
	}
	return d, nil
}

// next serves transport.bandwidth.sync.next: lease (the payload is the
// answer's body, its metadata the X-Edge-Sync-Op header; 204 when nothing
// waits), ack or release.
func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	var req NextRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch req.Action {
	case "ack", "release":
		id, err := edgesync.ParseOpID(req.ID)
		if err != nil {
			s.fail(w, badRequest("id %q: want the 32 hex digits of a leased op: %v", req.ID, err))
			return
		}
		if req.Action == "ack" {
			err = s.a.AckExternal(id)
		} else {
			err = s.a.ReleaseExternal(id)
		}
		s.reply(w, NextResponse{Action: req.Action, ID: id.String()}, err)
		return
	case "", "lease":
	default:
		s.fail(w, badRequest("action %q: want lease, ack or release", req.Action))
		return
	}
	if req.ID != "" {
		s.fail(w, badRequest(`"id" is for ack and release; a lease takes endpoint, priorities and ttl`))
		return
	}
	ttl := 5 * time.Minute
	if req.TTL != "" {
		d, err := units.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			s.fail(w, badRequest("ttl %q: want a positive duration such as 5m", req.TTL))
			return
		}
		ttl = d
	}
	prios := make([]edgesync.Priority, 0, len(req.Priorities))
	for _, ps := range req.Priorities {
		p, err := edgesync.ParsePriority(ps)
		if err != nil {
			s.fail(w, badRequest("priorities: %v", err))
			return
		}
		prios = append(prios, p)
	}
	l, ok, err := s.a.LeaseNext(req.Endpoint, ttl, prios...)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	op := l.Op
	meta := LeasedOp{ID: op.ID, Endpoint: op.Endpoint, Key: op.Key, Priority: op.Priority, Kind: op.Kind.String(),
		Size: op.Size, Summary: op.Summary, EnqueuedAt: op.EnqueuedAt, ExpiresAt: expiresAt(op), LeaseExpires: l.Expires}
	b, err := asciiJSON(meta)
	if err != nil {
		if rerr := s.a.ReleaseExternal(op.ID); rerr != nil {
			s.log.Warn("sync.next: the op stays leased until its lease ends", "id", op.ID, "error", rerr)
		}
		s.fail(w, err)
		return
	}
	w.Header().Set(HeaderOp, string(b))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(op.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, l.Payload()); err != nil {
		s.log.Warn("sync.next: payload not fully written; the op stays leased until its lease ends", "id", op.ID, "error", err)
	}
}

// asciiJSON marshals v with every non-ASCII rune escaped, fit for a header.
func asciiJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < 0x80:
			out.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.Bytes(), nil
}

func (s *Server) monitorStart(r *http.Request, req MonitorStartRequest) (any, error) {
	ms, err := req.start()
	if err != nil {
		return nil, err
	}
	return s.a.StartMonitor(r.Context(), ms)
}

func (s *Server) monitorStop(_ *http.Request, req EndpointRequest) (any, error) {
	return s.a.StopMonitor(req.Endpoint)
}

// decode reads a JSON request (an empty body is an empty request),
// refusing unknown fields and trailing data. It answers the error itself.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if len(r.URL.Query()) > 0 {
		s.fail(w, badRequest("this command takes a JSON body, not query parameters"))
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		s.fail(w, err)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.fail(w, badRequest("malformed JSON request: %v", err))
		return false
	}
	if dec.More() {
		s.fail(w, badRequest("malformed JSON request: data after the JSON object"))
		return false
	}
	return true
}

// reply writes v, or the error.
func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// fail maps err to a status and a code: the one place where the agent's
// errors meet HTTP.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, code := errorStatus(err)
	if status >= 500 {
		s.log.Warn("control request failed", "code", code, "error", err)
	}
	msg := err.Error()
	for _, sentinel := range []error{ErrBadRequest, agent.ErrInvalid} {
		if m, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok {
			msg = m
		}
	}
	switch code {
	case "too_large":
		msg += fmt.Sprintf(" (control.max_body_bytes is %d; outbox.max_op_bytes bounds an op)", s.cfg.MaxBodyBytes)
	case "outbox_full":
		msg += ": wait for the backlog to drain, raise outbox.max_ops/max_bytes, or send at a higher priority"
	case "no_monitor":
		msg += ": start it with transport.bandwidth.monitor.start"
	case "not_connected":
		msg += ": the endpoint has no connection to its core now; see transport.bandwidth.status"
	}
	writeError(w, status, code, msg)
}

func errorStatus(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, outbox.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrBadRequest), errors.Is(err, agent.ErrInvalid), errors.Is(err, outbox.ErrInvalid), errors.Is(err, linkmon.ErrInvalidPin):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, agent.ErrUnknownEndpoint):
		return http.StatusNotFound, "unknown_endpoint"
	case errors.Is(err, agent.ErrNoMonitor):
		return http.StatusConflict, "no_monitor"
	case errors.Is(err, agent.ErrNoBudget):
		return http.StatusConflict, "no_budget"
	case errors.Is(err, linkmon.ErrNotAttached):
		return http.StatusServiceUnavailable, "not_connected"
	case errors.Is(err, agent.ErrNotLeased):
		return http.StatusConflict, "not_leased"
	case errors.Is(err, outbox.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, outbox.ErrFull):
		return http.StatusInsufficientStorage, "outbox_full"
	case errors.Is(err, outbox.ErrNoSpace):
		return http.StatusInsufficientStorage, "no_space"
	case errors.Is(err, agent.ErrClosed), errors.Is(err, outbox.ErrClosed):
		return http.StatusServiceUnavailable, "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "canceled"
	}
	return http.StatusInternalServerError, "internal"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "encode answer: "+err.Error())
		return
	}
	jsonhttp.Write(w, status, b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	// Marshalling two strings cannot fail.
	b, _ := json.Marshal(Error{Code: code, Message: msg})
	jsonhttp.Write(w, status, b)
}
