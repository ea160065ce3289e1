package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
)

// This file is `ctl transport.bandwidth.sync.next`: lease an op for
// processing outside the agent, then ack or release it.

func nextAction(fs *pflag.FlagSet) ctlAction {
	ep := endpointFlag(fs)
	var prios stringList
	fs.Var(&prios, "priority", "lease only ops of these priorities (comma separated, repeatable)")
	var ttl time.Duration
	durationVar(fs, &ttl, "ttl", 5*time.Minute, "lease duration")
	out := fs.String("out", "", "write the payload here (- for standard output); without it the payload is not fetched")
	ack := fs.String("ack", "", "acknowledge the leased op ID: it is deleted")
	release := fs.String("release", "", "release the leased op ID: the sender sends it")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		if *ack != "" || *release != "" {
			if *ack != "" && *release != "" {
				return usagef(x.name, "give --ack or --release, not both")
			}
			req := control.NextRequest{Action: "ack", ID: *ack}
			if *release != "" {
				req = control.NextRequest{Action: "release", ID: *release}
			}
			if _, err := edgesync.ParseOpID(req.ID); err != nil {
				return usagef(x.name, "op ID %q: %v", req.ID, err)
			}
			var r control.NextResponse
			return x.call(ctx, control.CmdNext, req, &r, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", r.Action, r.ID) })
		}
		for _, p := range prios {
			if _, err := edgesync.ParsePriority(p); err != nil {
				return usagef(x.name, "--priority: %v", err)
			}
		}
		if ttl <= 0 {
			return usagef(x.name, "--ttl must be positive, got %s", units.FormatDuration(ttl))
		}
		op, body, err := x.c.Lease(ctx, control.NextRequest{Endpoint: *ep, Priorities: prios, TTL: ttl.String()})
		if errors.Is(err, control.ErrNothingWaiting) {
			if x.json {
				fmt.Fprintln(x.env.Stdout, "null")
			} else {
				fmt.Fprintln(x.env.Stderr, "nothing waiting")
			}
			return nil
		}
		if err != nil {
			return apiErr(control.CmdNext, err)
		}
		defer body.Close()
		if err := savePayload(x.env, *out, body); err != nil {
			return fmt.Errorf("%s: op %s stays leased until %s: %w", control.CmdNext, op.ID, op.LeaseExpires.Format(time.RFC3339), err)
		}
		meta := x.env.Stdout
		if *out == "-" {
			meta = x.env.Stderr
		}
		if x.json {
			return json.NewEncoder(meta).Encode(op)
		}
		printLeased(meta, op, *out)
		return nil
	}
}

func savePayload(env Env, out string, body io.Reader) error {
	switch out {
	case "":
		return nil
	case "-":
		_, err := io.Copy(env.Stdout, body)
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
