package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/core"
)

// ErrNoCore means no core answers on the admin socket: there is no socket
// file, or nothing accepts on it.
var ErrNoCore = errors.New("no running core")

// Error is an error answer of the admin API. It unwraps to core.ErrNotFound
// (404) or core.ErrInvalid (400), as the store's errors do.
type Error struct {
	Status  int
	Message string
}

// Error returns "core: message".
func (e *Error) Error() string { return "core: " + e.Message }

// Unwrap returns the store's sentinel error the status stands for.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return core.ErrNotFound
	case http.StatusBadRequest:
		return core.ErrInvalid
	}
	return nil
}

// Client reads the admin API of a running core over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

var _ Reader = (*Client)(nil)

// NewClient returns a client of the admin socket at path.
func NewClient(path string) *Client {
	return &Client{socket: path, hc: &http.Client{
		// No overall timeout: Get may stream a large object; callers bound
		// calls with their context.
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			ResponseHeaderTimeout: 30 * time.Second,
		},
	}}
}

// Close releases the client's idle connections. It owns no goroutines and
// cannot fail; it returns an error to be an io.Closer, as every Close of
// the project does.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// do sends GET path?q and returns the answer of status 200, or an error:
// ErrNoCore when no core answers, *Error for an error answer.
func (c *Client) do(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	if _, err := os.Stat(c.socket); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no socket %s)", ErrNoCore, c.socket)
	}
	u := "http://core" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrNoCore, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body errorBody
	switch {
	case err != nil:
		e.Message = fmt.Sprintf("HTTP %d; reading the answer: %v", resp.StatusCode, err)
	case json.Unmarshal(b, &body) == nil && body.Error != "":
		e.Message = body.Error
	default:
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil, e
}

// getJSON decodes the answer of GET path?q into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("core %s: decode answer: %w", path, err)
	}
	return nil
}

func listQuery(agent, prefix string, n int) url.Values {
	return url.Values{"agent": {agent}, "prefix": {prefix}, "limit": {strconv.Itoa(limit(n))}}
}

// Agents lists the agents that have sent anything.
func (c *Client) Agents(ctx context.Context) ([]string, error) {
	var out []string
	err := c.getJSON(ctx, "/v1/agents", nil, &out)
	return out, err
}

// Keys lists the current versions of an agent's keys under prefix.
func (c *Client) Keys(ctx context.Context, agent, prefix string, n int) ([]VersionInfo, error) {
	var out []VersionInfo
	err := c.getJSON(ctx, "/v1/keys", listQuery(agent, prefix, n), &out)
	return out, err
}

// Get writes the current data of an agent's key to w.
func (c *Client) Get(ctx context.Context, agent, key string, w io.Writer) error {
	return c.copyTo(ctx, "/v1/get", url.Values{"agent": {agent}, "key": {key}}, w, "core get "+key)
}

// GetEvent writes the payload of an agent's event seq to w.
func (c *Client) GetEvent(ctx context.Context, agent string, seq uint64, w io.Writer) error {
	q := url.Values{"agent": {agent}, "seq": {strconv.FormatUint(seq, 10)}}
	return c.copyTo(ctx, "/v1/event", q, w, fmt.Sprintf("core get event %d", seq))
}

// copyTo writes the body of GET path?q to w, failing with what when it
// ends short.
func (c *Client) copyTo(ctx context.Context, path string, q url.Values, w io.Writer, what string) error {
	resp, err := c.do(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Events lists an agent's events from sequence number from on.
func (c *Client) Events(ctx context.Context, agent string, from uint64, n int) ([]EventInfo, error) {
	var out []EventInfo
	q := url.Values{"agent": {agent}, "from": {strconv.FormatUint(from, 10)}, "limit": {strconv.Itoa(limit(n))}}
	err := c.getJSON(ctx, "/v1/events", q, &out)
	return out, err
}

// Summaries lists the latest summaries of an agent's keys under prefix.
func (c *Client) Summaries(ctx context.Context, agent, prefix string, n int) ([]core.Summary, error) {
	var out []core.Summary
	err := c.getJSON(ctx, "/v1/summaries", listQuery(agent, prefix, n), &out)
	return out, err
}

// Stats returns the store's counters.
func (c *Client) Stats(ctx context.Context) (core.Stats, error) {
	var out core.Stats
	err := c.getJSON(ctx, "/v1/stats", nil, &out)
	return out, err
}
