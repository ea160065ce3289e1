package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// Client speaks the control API, for `edge-sync ctl`, `put` and tests.
// Errors answered by the agent are *StatusError; when no agent answers at
// all the error is a *NotRunningError (errors.Is ErrNotRunning).
type Client struct {
	hc    *http.Client
	base  string
	token string
	// where is the socket path or TCP address, for NotRunningError.
	where string
	tcp   bool
}

// ErrNotRunning means no agent answers where the client connects: no
// socket file, or nothing accepting on it or on the TCP address.
var ErrNotRunning = errors.New("agent not running")

// NotRunningError is the error of a client that finds no agent: where
// it looked, and what to do.
type NotRunningError struct {
	Where string // the socket path, or the TCP address
	TCP   bool
	Err   error // the dial error
}

// Error says so in a sentence an operator can act on.
func (e *NotRunningError) Error() string {
	const start = "start it with: edge-sync agent --config FILE"
	// An agent may run with another socket (its data_dir or
	// control.socket): say how to point the client at it.
	const point = "if it runs, point at its socket with --config FILE (its control.socket) or --socket PATH"
	switch {
	case e.TCP:
		return fmt.Sprintf("is the agent running? nothing answers on %s (its control.tcp; %s)", e.Where, start)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("is the agent running? nothing listens on the control socket %s, left by an agent that stopped (%s; %s)", e.Where, start, point)
	}
	return fmt.Sprintf("is the agent running? no control socket at %s (%s; %s)", e.Where, start, point)
}

// Unwrap makes errors.Is find ErrNotRunning and the dial error.
func (e *NotRunningError) Unwrap() []error { return []error{ErrNotRunning, e.Err} }

// StatusError is an error answer (an Error body) with the HTTP status it
// came with.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

// Error returns "code: message (HTTP status)".
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// NewClient returns a client of the unix socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://agent", where: path}
}

// NewClientTCP returns a client of the loopback TCP listener at addr that
// sends token as its bearer token.
func NewClientTCP(addr, token string) *Client {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://" + addr, token: strings.TrimSpace(token), where: addr, tcp: true}
}

// Close releases the client's idle connections. It owns no goroutines and
// cannot fail; it returns an error to be an io.Closer, as every Close of
// the project does.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
			return nil, &NotRunningError{Where: c.where, TCP: c.tcp, Err: err}
		}
		return nil, fmt.Errorf("control API: %w", err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		se := &StatusError{Status: resp.StatusCode}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			se.Code, se.Message = "http", fmt.Sprintf("reading the error answer: %v", err)
			return nil, se
		}
		var e Error
		if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
			e = Error{Code: "http", Message: strings.TrimSpace(string(b))}
		}
		se.Code, se.Message = e.Code, e.Message
		return nil, se
	}
	return resp, nil
}

// Call runs a JSON command: req is marshalled as the body (nil means an
// empty request) and the answer is decoded into resp (nil discards it).
func (c *Client) Call(ctx context.Context, cmd string, req, resp any) error {
	var body io.Reader
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		body = bytes.NewReader(b)
	}
	r, err := c.request(ctx, http.MethodPost, "/v1/"+cmd, body)
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := c.do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if resp == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return err
	}
	if err := json.NewDecoder(res.Body).Decode(resp); err != nil {
		return fmt.Errorf("%s: decode answer: %w", cmd, err)
	}
	return nil
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	r, err := c.request(ctx, http.MethodGet, "/v1/health", nil)
	if err != nil {
		return h, err
	}
	res, err := c.do(r)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	err = json.NewDecoder(res.Body).Decode(&h)
	return h, err
}

// UploadParams are the query parameters of transport.send and
// transport.bandwidth.sync.queue.
type UploadParams struct {
	Endpoint string
	Key      string
	Priority string // a priority name; "" means normal (send only)
	Kind     string // "event" (default) or "state"
	TTL      string // a duration ("24h", "2d"); "" means the priority's default
	Summary  []byte
}

// Upload streams body as the payload of cmd (CmdSend or CmdQueue). size is
// the body's length, or -1 when unknown.
func (c *Client) Upload(ctx context.Context, cmd string, p UploadParams, body io.Reader, size int64) (SendResponse, error) {
	q := url.Values{}
	for k, v := range map[string]string{"endpoint": p.Endpoint, "key": p.Key, "priority": p.Priority, "kind": p.Kind, "ttl": p.TTL} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/" + cmd
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	r, err := c.request(ctx, http.MethodPost, path, body)
	if err != nil {
		return SendResponse{}, err
	}
	r.ContentLength = size
	if size == 0 {
		r.Body = http.NoBody
	}
	r.Header.Set("Content-Type", "application/octet-stream")
	if len(p.Summary) > 0 {
		r.Header.Set(HeaderSummary, base64.StdEncoding.EncodeToString(p.Summary))
	}
	res, err := c.do(r)
	if err != nil {
		return SendResponse{}, err
	}
	defer res.Body.Close()
	var out SendResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("%s: decode answer: %w", cmd, err)
	}
	return out, nil
}

// Lease runs transport.bandwidth.sync.next's lease: the op's metadata and
// its payload, which the caller must close. It returns ErrNothingWaiting
// when nothing waits.
func (c *Client) Lease(ctx context.Context, req NextRequest) (LeasedOp, io.ReadCloser, error) {
	req.Action = ""
	b, err := json.Marshal(req)
	if err != nil {
		return LeasedOp{}, nil, err
	}
	r, err := c.request(ctx, http.MethodPost, "/v1/"+CmdNext, bytes.NewReader(b))
	if err != nil {
		return LeasedOp{}, nil, err
	}
	res, err := c.do(r)
	if err != nil {
		return LeasedOp{}, nil, err
	}
	if res.StatusCode == http.StatusNoContent {
		res.Body.Close()
		return LeasedOp{}, nil, ErrNothingWaiting
	}
	var op LeasedOp
	if err := json.Unmarshal([]byte(res.Header.Get(HeaderOp)), &op); err != nil {
		res.Body.Close()
		return op, nil, fmt.Errorf("%s: bad %s header: %w", CmdNext, HeaderOp, err)
	}
	return op, res.Body, nil
}
