package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

const demoUsage = `Usage: edge-sync demo [--duration D] [--keep] [--large SIZE]

Runs a core, a link emulator and an agent in one process, in a temporary
directory with generated certificates, and puts a mixed workload through
them: a critical alarm stream, schema changes, sensor records that update
the same keys, analytics events and a large background file. The link walks
fiber → lte → satellite-geo → outage → broadband; the live view shows what
the agent measured, the mode it switched to, goodput and the queue per
priority. At the end it checks at the core that every op arrived exactly
once (or was superseded by a newer version of its key) and prints latency
per priority and the bytes saved by compression, deltas and summaries.

It exits non-zero if verification fails.

Examples:
  edge-sync demo
  edge-sync demo --duration 30s
  edge-sync demo --keep          # keep the directory with logs and stores`

// demoStep is one stop of the link walk.
type demoStep struct {
	name    string
	profile linksim.Profile
}

func demoWalk() []demoStep {
	return []demoStep{
		{"fiber", linksim.Fiber()},
		{"lte", linksim.LTE()},
		{"satellite-geo", linksim.SatelliteGEO()},
		{"outage", linksim.Outage()},
		{"broadband", linksim.Broadband()},
	}
}

func runDemo(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "demo", demoUsage)
	duration := fs.Duration("duration", 75*time.Second, "length of the link walk (five equal steps)")
	keep := fs.Bool("keep", false, "keep the temporary directory (logs, stores, certificates)")
	largeSize := fs.String("large", "16MiB", "size of the large background file")
	if err := parseFlags(fs, "demo", args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("demo", "unexpected argument %q", fs.Arg(0))
	}
	if *duration < 10*time.Second {
		return usagef("demo", "--duration must be at least 10s, got %s", *duration)
	}
	large, err := units.ParseSize(*largeSize)
	if err != nil || large < 1<<20 || large > 1<<30 {
		return usagef("demo", "--large must be 1MiB-1GiB, got %q", *largeSize)
	}
	dir, err := os.MkdirTemp("", "edge-sync-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(env.Stdout, "demo directory: %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	d := &demo{env: env, dir: dir, step: *duration / 5, large: large}
	return d.run(ctx)
}

type demo struct {
	env   Env
	dir   string
	step  time.Duration
	large int64

	core  *coreRunning
	relay *linksim.Relay
	agent *agent.Agent

	mu       sync.Mutex
	sent     map[edgesync.OpID]demoOp // every op the agent accepted
	lastByKy map[string]edgesync.OpID // newest state op per key
	dropped  map[edgesync.OpID]outbox.Reason
	largeID  edgesync.OpID
	walkName string
}

type demoOp struct {
	key      string
	kind     outbox.Kind
	priority edgesync.Priority
	hash     [32]byte
	size     int64
}

func (d *demo) run(ctx context.Context) error {
	pkiDir := filepath.Join(d.dir, "pki")
	if err := demoCerts(pkiDir); err != nil {
		return err
	}
	coreLog, err := os.Create(filepath.Join(d.dir, "core.log"))
	if err != nil {
		return err
	}
	defer coreLog.Close()
	agentLog, err := os.Create(filepath.Join(d.dir, "agent.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()

	ccfg := config.DefaultCore()
	ccfg.Listen = "127.0.0.1:0"
	ccfg.DataDir = filepath.Join(d.dir, "core")
	ccfg.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "core.pem"), Key: filepath.Join(pkiDir, "core-key.pem")}
	clog, _ := logging.New("core", coreLog, "info", "text")
	cr, stopCore, err := startCore(ctx, ccfg, clog)
	if err != nil {
		return fmt.Errorf("demo core: %w", err)
	}
	defer stopCore()
	d.core = cr

	walk := demoWalk()
	d.relay, err = linksim.NewRelay(linksim.RelayConfig{Target: cr.addr.String(), Profile: walk[0].profile})
	if err != nil {
		return fmt.Errorf("demo link emulator: %w", err)
	}
	defer d.relay.Close()

	acfg := config.DefaultAgent()
	acfg.Name = "demo-site"
	acfg.DataDir = filepath.Join(d.dir, "agent")
	acfg.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "agent-demo-site.pem"), Key: filepath.Join(pkiDir, "agent-demo-site-key.pem")}
	acfg.Monitor.SampleInterval = 250 * time.Millisecond
	acfg.Endpoints = []config.Endpoint{{Name: "core", Address: d.relay.Addr().String(), ServerName: "127.0.0.1", Monitor: acfg.Monitor}}
	// The demo compresses a day into a minute: batches every few seconds.
	for class, iv := range map[edgesync.LinkClass]time.Duration{edgesync.Mobile: 2 * time.Second, edgesync.Satellite: 4 * time.Second, edgesync.Unknown: time.Second} {
		iv := iv
		acfg.Profiles[class] = config.Profile{Interval: &iv}
	}
	alog, _ := logging.New("agent", agentLog, "info", "text")
	a, stopAgent, err := startAgent(ctx, acfg, agent.Options{Logger: alog})
	if err != nil {
		return fmt.Errorf("demo agent: %w", err)
	}
	defer stopAgent()
	d.agent = a
	d.sent, d.lastByKy, d.dropped = map[edgesync.OpID]demoOp{}, map[string]edgesync.OpID{}, map[edgesync.OpID]outbox.Reason{}

	out := d.env.Stdout
	fmt.Fprintf(out, "edge-sync demo: core %s, link emulator %s, agent %q; logs in %s\n", cr.addr, d.relay.Addr(), acfg.Name, d.dir)
	fmt.Fprintf(out, "link walk: %s, %s each\n\n", walkNames(walk), d.step)

	wctx, stopWork := context.WithCancel(ctx)
	// Drops are watched until verification: a state op may be superseded
	// while the rest drains.
	dctx, stopDrops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.workload(wctx) }()
	dropsDone := make(chan struct{})
	go func() { defer close(dropsDone); d.watchDrops(dctx) }()
	defer func() { stopDrops(); <-dropsDone }()

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i, st := range walk {
		if err := d.relay.SetProfile(st.profile); err != nil {
			stopWork()
			wg.Wait()
			return err
		}
		d.mu.Lock()
		d.walkName = st.name
		d.mu.Unlock()
		fmt.Fprintf(out, "── link → %s (%s)\n", st.name, st.profile.Summary)
		if i == 1 {
			d.enqueueLarge(ctx)
		}
		end := time.After(d.step)
	step:
		for {
			select {
			case <-ctx.Done():
				stopWork()
				wg.Wait()
				return ctx.Err()
			case <-end:
				break step
			case <-tick.C:
				d.printLine(out, time.Since(start))
			}
		}
	}
	stopWork()
	wg.Wait()

	fmt.Fprintln(out, "\n── workload stopped; draining what is left")
	drainBy := time.Now().Add(max(60*time.Second, 2*d.step))
	for !d.drained() && time.Now().Before(drainBy) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			d.printLine(out, time.Since(start))
		}
	}
	stopDrops()
	<-dropsDone
	return d.verify(out)
}

func walkNames(w []demoStep) string {
	names := make([]string, len(w))
	for i, s := range w {
		names[i] = s.name
	}
	return strings.Join(names, " → ")
}

func demoCerts(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := pki.NewCA("edge-sync demo CA", 24*time.Hour)
	if err != nil {
		return err
	}
	if err := pki.WriteCA(ca, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), false); err != nil {
		return err
	}
	srv, err := ca.Issue("core", true, []string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return err
	}
	if err := pki.WriteCert(srv, filepath.Join(dir, "core.pem"), filepath.Join(dir, "core-key.pem"), false); err != nil {
		return err
	}
	cl, err := ca.Issue("demo-site", false, nil, 24*time.Hour)
	if err != nil {
		return err
	}
	return pki.WriteCert(cl, filepath.Join(dir, "agent-demo-site.pem"), filepath.Join(dir, "agent-demo-site-key.pem"), false)
}

// put enqueues one op and records it for verification.
func (d *demo) put(ctx context.Context, key string, p edgesync.Priority, kind outbox.Kind, payload []byte, summary []byte) (edgesync.OpID, error) {
	op, err := d.agent.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: key, Priority: p, Kind: kind, Payload: bytes.NewReader(payload), Summary: summary})
	if err != nil {
		return edgesync.OpID{}, err
	}
	d.mu.Lock()
	d.sent[op.ID] = demoOp{key: key, kind: kind, priority: p, hash: sha256.Sum256(payload), size: int64(len(payload))}
	if kind == outbox.State {
		d.lastByKy[key] = op.ID
	}
	d.mu.Unlock()
	return op.ID, nil
}

// workload is the mixed producer load: alarms, schema changes, sensor
// records with repeated keys, analytics events.
func (d *demo) workload(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(7, 11))
	sensors := make([][]byte, 16)
	for i := range sensors {
		sensors[i] = sensorRecord(rnd, i, 0)
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		i := n % len(sensors)
		sensors[i] = sensorRecord(rnd, i, n)
		_, _ = d.put(ctx, fmt.Sprintf("sensors/pump-%02d", i), edgesync.Normal, outbox.State, sensors[i],
			[]byte(fmt.Sprintf(`{"pump":%d,"n":%d}`, i, n)))
		if n%15 == 0 {
			alarm := fmt.Sprintf(`{"alarm":"pressure high","pump":%d,"n":%d,"at":%q}`, rnd.IntN(16), n, time.Now().Format(time.RFC3339Nano))
			_, _ = d.put(ctx, "alarms", edgesync.Critical, outbox.Event, []byte(alarm), nil)
		}
		if n%5 == 0 {
			ev := bytes.Repeat([]byte(fmt.Sprintf(`{"metric":"flow","v":%d}`, rnd.IntN(1000))), 200)
			_, _ = d.put(ctx, "analytics/flow", edgesync.Analytics, outbox.Event, ev, []byte("flow samples"))
		}
		if n%100 == 0 {
			schema := fmt.Sprintf(`{"table":"readings","version":%d,"columns":["pump","pressure","flow","temp"]}`, n/100+1)
			_, _ = d.put(ctx, "schema/readings", edgesync.Schema, outbox.State, []byte(schema), nil)
		}
	}
}

// sensorRecord is a ~4 KiB JSON document of which a few fields change.
func sensorRecord(rnd *rand.Rand, pump, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"pump":%d,"seq":%d,"pressure":%.2f,"readings":[`, pump, n, 3+rnd.Float64())
	for i := range 120 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"t":%d,"v":%d}`, i, (pump*31+i*7)%97+(n%3))
	}
	b.WriteString("]}")
	return b.Bytes()
}

func (d *demo) enqueueLarge(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(3, 5))
	data := make([]byte, d.large)
	for i := 0; i < len(data); i += 4096 {
		end := min(i+4096, len(data))
		if (i/4096)%2 == 0 { // half random, half text: zstd saves some
			for j := i; j < end; j++ {
				data[j] = byte(rnd.Uint32())
			}
		} else {
			copy(data[i:end], bytes.Repeat([]byte("log line: pump ok, pressure nominal\n"), 120))
		}
	}
	id, err := d.put(ctx, "files/camera-archive.tar", edgesync.Background, outbox.Event, data, []byte("camera archive, 1 day"))
	if err == nil {
		d.mu.Lock()
		d.largeID = id
		d.mu.Unlock()
	}
}

func (d *demo) watchDrops(ctx context.Context) {
	drops, cancel := d.agent.SubscribeDrops()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case dr, ok := <-drops:
			if !ok {
				return
			}
			d.mu.Lock()
			d.dropped[dr.ID] = dr.Reason
			d.mu.Unlock()
		}
	}
}

func (d *demo) drained() bool {
	st, err := d.agent.Outbox().Stats()
	return err == nil && st.Total.Ops == 0
}

// printLine prints the live view's line for this second.
func (d *demo) printLine(w io.Writer, since time.Duration) {
	st, err := d.agent.Status("core")
	if err != nil {
		return
	}
	var q []string
	for _, p := range edgesync.Priorities() {
		q = append(q, fmt.Sprintf("%c%d", p.String()[0], st.Backlog[p.String()].Ops))
	}
	d.mu.Lock()
	link, largeID, large := d.walkName, d.largeID, d.large
	d.mu.Unlock()
	bar := ""
	if !largeID.IsZero() {
		held, ok := d.core.store.PartialSize("demo-site", largeID)
		if !ok {
			if done, _ := d.core.store.Applied("demo-site", largeID); done {
				held = large
			}
		}
		bar = " " + progressBar(held, large, 20)
	}
	m := st.Figures
	fmt.Fprintf(w, "%5.0fs link=%-13s class=%-12s mode=%-17s rtt=%-6s bw=%-11s loss=%4.1f%% queue %s%s\n",
		since.Seconds(), link, st.Class, st.Params.Mode, m.RTT.Round(time.Millisecond), fmtBps(m.BandwidthBps),
		m.Loss*100, strings.Join(q, " "), bar)
}

func progressBar(n, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	f := min(1, float64(n)/float64(total))
	full := int(f * float64(width))
	return fmt.Sprintf("large [%s%s] %3.0f%%", strings.Repeat("#", full), strings.Repeat("-", width-full), f*100)
}

// fmtBps renders a measured bandwidth, "?" while there is none.
func fmtBps(bps float64) string {
	if bps <= 0 {
		return "?"
	}
	return units.FormatBitRate(bps)
}

// verify checks at the core that every op the agent accepted arrived
// exactly once, or was superseded by a newer version of its key, and prints
// the summary.
func (d *demo) verify(w io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	store := d.core.store
	agentName := "demo-site"
	var problems []string

	// Events: each exactly once in the core's event log.
	seen := map[edgesync.OpID]int{}
	for from := uint64(1); ; {
		evs, err := store.Events(agentName, from, 10000)
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
		for _, e := range evs {
			seen[e.OpID]++
			from = e.Seq + 1
		}
		if len(evs) < 10000 {
			break
		}
	}
	type tally struct{ sent, delivered, superseded int }
	byPrio := map[edgesync.Priority]*tally{}
	for _, p := range edgesync.Priorities() {
		byPrio[p] = &tally{}
	}
	for id, op := range d.sent {
		t := byPrio[op.priority]
		t.sent++
		if op.kind == outbox.Event {
			switch n := seen[id]; {
			case n == 1:
				t.delivered++
			case n > 1:
				problems = append(problems, fmt.Sprintf("event %s (%s) stored %d times", id, op.key, n))
			default:
				problems = append(problems, fmt.Sprintf("event %s (%s) missing at the core (%v)", id, op.key, d.dropped[id]))
			}
			continue
		}
		if d.lastByKy[op.key] != id {
			if r, ok := d.dropped[id]; ok && r == outbox.ReasonSuperseded {
				t.superseded++
				continue
			}
			// Sent before a newer version came; the newer one must win.
			if ok, _ := store.Applied(agentName, id); ok {
				t.delivered++
				continue
			}
			problems = append(problems, fmt.Sprintf("state op %s (%s) neither delivered nor superseded (%v)", id, op.key, d.dropped[id]))
			continue
		}
		v, _, err := store.Current(agentName, op.key)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("key %s missing at the core: %v", op.key, err))
		case v.Hash != op.hash:
			problems = append(problems, fmt.Sprintf("key %s: the core holds another version than the newest one sent", op.key))
		default:
			t.delivered++
		}
	}

	stats := d.agent.Stats()
	var es agent.EndpointStats
	if len(stats) > 0 {
		es = stats[0]
	}
	fmt.Fprintln(w, "\n── verified at the core")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "priority\tsent\tdelivered\tsuperseded\tavg latency\tmax latency\t")
	for _, p := range edgesync.Priorities() {
		t := byPrio[p]
		ps := es.Priorities[p.String()]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t\n", p, t.sent, t.delivered, t.superseded,
			ps.AvgLatency.Round(time.Millisecond), ps.MaxLatency.Round(time.Millisecond))
	}
	tw.Flush()

	var plain, onWire int64
	modes := make([]string, 0, len(es.Modes))
	for m := range es.Modes {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	fmt.Fprintln(w)
	for _, m := range modes {
		ms := es.Modes[m]
		plain += ms.PlainBytes
		onWire += ms.WireBytes
		saved := 0.0
		if ms.PlainBytes > 0 {
			saved = 100 * (1 - float64(ms.WireBytes)/float64(ms.PlainBytes))
		}
		fmt.Fprintf(w, "mode %-11s %6d transfers, %10s payload → %10s on the wire (%.0f %% saved)\n", m, ms.Ops, units.FormatBytes(ms.PlainBytes), units.FormatBytes(ms.WireBytes), saved)
	}
	fmt.Fprintf(w, "summaries sent first: %d (holding back %s until the link improved)\n", es.Summaries, units.FormatBytes(es.SummaryBytes))
	fmt.Fprintf(w, "mode switches: %d, reconnects: %d, transfers paused at a chunk boundary: %d\n", es.ModeSwitches, max(0, es.Connects-1), es.Paused)
	if plain > 0 {
		fmt.Fprintf(w, "in all: %s of payload sent as %s (%.0f %% saved by compression and deltas)\n", units.FormatBytes(plain), units.FormatBytes(onWire), 100*(1-float64(onWire)/float64(plain)))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		fmt.Fprintf(w, "\nVERIFICATION FAILED: %d problem(s)\n", len(problems))
		for i, p := range problems {
			if i == 20 {
				fmt.Fprintf(w, "  … and %d more\n", len(problems)-20)
				break
			}
			fmt.Fprintln(w, "  "+p)
		}
		return fmt.Errorf("demo: verification failed: %d problem(s)", len(problems))
	}
	fmt.Fprintf(w, "\nOK: all %d ops accepted by the agent are at the core exactly once (or superseded by a newer version of their key)\n", len(d.sent))
	return nil
}
