package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
)

const putLong = `Hands the running agent one piece of data to send: FILE (or standard input
for "-") is streamed to the agent's control socket and stored durably in its
outbox before put returns. put prints the op's ID. It is
'edge-sync ctl transport.send' under a shorter name. Flags may come before
or after FILE.

Priorities, most urgent first: ` + "PRIORITIES" + `.
A --state op is a keyed update: a newer one for the same key replaces an
older one still waiting. An --event op (the default) is always delivered.`

const putExample = `  edge-sync put reading.json --key sensors/pump-3 --priority high --state
  journalctl -o json -n 1000 | edge-sync put - --key logs/journal --priority background
  edge-sync put alarm.json --key alarms/pump-3 --priority critical --summary "overpressure 9.1 bar"
  edge-sync put image.bin --socket /run/edge-sync/agent.sock --key fw/image --priority analytics --ttl 2d`

// uploadFlags are the flags of put, transport.send and sync.queue.
type uploadFlags struct {
	key, priority, endpoint, ttl, summary, summaryFile string
	state, event                                       bool
}

func (u *uploadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&u.key, "key", "", "key naming the data (required for --state)")
	fs.StringVar(&u.priority, "priority", "", priorityList())
	fs.StringVar(&u.endpoint, "endpoint", "", "endpoint (core) to send to; default: the agent's first configured endpoint")
	fs.BoolVar(&u.state, "state", false, "a keyed state update: a newer one replaces a waiting older one")
	fs.BoolVar(&u.event, "event", false, "an event: always delivered (the default)")
	fs.StringVar(&u.ttl, "ttl", "", "drop the op if not delivered within this duration (e.g. 24h, 2d); default: the priority's")
	fs.StringVar(&u.summary, "summary", "", "short summary sent ahead of the payload on slow links")
	fs.StringVar(&u.summaryFile, "summary-file", "", "read the summary from this file")
}

// upload validates the flags and the file argument and streams it.
func (u *uploadFlags) upload(ctx context.Context, env Env, name, cmd string, c *control.Client, args []string, priorityRequired bool) (control.SendResponse, error) {
	if len(args) != 1 {
		return control.SendResponse{}, usagef(name, "want exactly one FILE (or - for standard input), got %d arguments", len(args))
	}
	if u.state && u.event {
		return control.SendResponse{}, usagef(name, "--state and --event exclude each other")
	}
	if u.priority == "" && priorityRequired {
		return control.SendResponse{}, usagef(name, "--priority is required (%s)", priorityList())
	}
	if u.priority != "" {
		if _, err := edgesync.ParsePriority(u.priority); err != nil {
			return control.SendResponse{}, usagef(name, "--priority: %v", err)
		}
	}
	if u.state && u.key == "" {
		return control.SendResponse{}, usagef(name, "--state needs --key")
	}
	if u.summary != "" && u.summaryFile != "" {
		return control.SendResponse{}, usagef(name, "give --summary or --summary-file, not both")
	}
	ttl := ""
	if u.ttl != "" {
		d, err := units.ParseDuration(u.ttl)
		if err != nil || d <= 0 {
			return control.SendResponse{}, usagef(name, "--ttl: want a positive duration like 24h or 2d, got %q", u.ttl)
		}
		ttl = d.String()
	}
	p := control.UploadParams{Endpoint: u.endpoint, Key: u.key, Priority: u.priority, TTL: ttl, Kind: "event"}
	if u.state {
		p.Kind = "state"
	}
	p.Summary = []byte(u.summary)
	if u.summaryFile != "" {
		b, err := os.ReadFile(u.summaryFile)
		if err != nil {
			return control.SendResponse{}, fmt.Errorf("%s: summary: %w", name, err)
		}
		p.Summary = b
	}
	var body io.Reader = env.Stdin
	size := int64(-1)
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return control.SendResponse{}, fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return control.SendResponse{}, fmt.Errorf("%s: %w", name, err)
		}
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		body = f
	}
	res, err := c.Upload(ctx, cmd, p, body, size)
	if err != nil {
		return res, apiErr(name, err)
	}
	return res, nil
}

func newPutCmd(env Env) *cobra.Command {
	var conn connFlags
	var u uploadFlags
	c := &cobra.Command{
		Use:     "put [flags] FILE|-",
		Long:    strings.Replace(putLong, "PRIORITIES", priorityList(), 1),
		Example: putExample,
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if u.priority == "" {
				return usagef("put", "--priority is required (%s)", priorityList())
			}
			cl, err := conn.client("put")
			if err != nil {
				return err
			}
			defer cl.Close()
			res, err := u.upload(c.Context(), env, "put", control.CmdSend, cl, args, true)
			if err != nil {
				return err
			}
			if conn.json {
				return json.NewEncoder(env.Stdout).Encode(res)
			}
			fmt.Fprintln(env.Stdout, res.ID)
			return nil
		},
	}
	conn.register(c.Flags())
	u.register(c.Flags())
	completeCtlFlags(c, &conn)
	return c
}
