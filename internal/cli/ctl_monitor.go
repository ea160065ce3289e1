package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
)

// This file is `ctl transport.bandwidth.monitor.start`.

func monitorStartAction(fs *pflag.FlagSet) ctlAction {
	ep := endpointFlag(fs)
	addr := fs.String("address", "", "host:port of a new endpoint's core")
	sn := fs.String("server-name", "", "name in the new core's certificate (default: host of --address)")
	var mo control.MonitorOverrides
	fs.StringVar(&mo.ProbeInterval, "probe-interval", "", "bandwidth probe period, e.g. 5s")
	fs.StringVar(&mo.SampleInterval, "sample-interval", "", "light sample period, e.g. 500ms")
	fs.StringVar(&mo.Window, "window", "", "classification window, e.g. 30s")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		if *addr != "" && *ep == "" {
			return usagef(x.name, "--address adds an endpoint: name it with --endpoint")
		}
		req := control.MonitorStartRequest{Endpoint: *ep, Address: *addr, ServerName: *sn}
		if mo != (control.MonitorOverrides{}) {
			req.Monitor = &mo
		}
		var r agent.MonitorResult
		return x.call(ctx, control.CmdMonitorStart, req, &r, func(w io.Writer) {
			if r.Added {
				fmt.Fprintf(w, "endpoint %s added (%s)\n", r.Endpoint, r.Address)
			}
			fmt.Fprintf(w, "monitoring %s: %t\n", r.Endpoint, r.Monitoring)
		})
	}
}
