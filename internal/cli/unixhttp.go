package cli

import (
	"context"
	"net"
	"net/http"
	"time"
)

// unixClient is an HTTP client that dials one unix socket, whatever the
// URL's host says.
func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 0, // `get` may stream a large object; callers bound with ctx
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			ResponseHeaderTimeout: 30 * time.Second,
		},
	}
}
