package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/demodata"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

const demoLong = `Runs a core, a link emulator and an agent in one process, in a temporary
directory with generated certificates, and puts a mixed workload through
them: a critical alarm stream, schema changes, sensor records that update
the same keys, analytics events and a large background file. The link walks
fiber → lte → satellite-geo → outage → broadband → satellite-only, where it
stays while the rest drains: there a log file goes as its summary first and
its full data follows as backfill. The live view shows what the agent
measured, the mode it switched to, goodput and the queue per priority. At
the end it checks at the core that every op arrived exactly once (or was
superseded by a newer version of its key) and that every summary was
followed by its full data, and prints latency per priority, the ops that
arrived as summary first and then in full, and the bytes saved by
compression, deltas and summaries.

It exits non-zero if verification fails. --report writes one HTML page
with the walk's plots (the true link beside what the agent measured, the
class, the mode, the queue), the latency per priority and the summary.`

const demoExample = `  edge-sync demo
  edge-sync demo --duration 30s
  edge-sync demo --keep          # keep the directory with logs and stores
  edge-sync demo --report demo.html`

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
		// Long enough for a backfill to finish: the satellite-only step's
		// log file, and summarized sensor records, arrive in full on it.
		{"satellite-only", linksim.SatelliteGEO()},
	}
}

// demoOpts are the flags of demo.
type demoOpts struct {
	duration  time.Duration
	keep      bool
	largeSize string
	report    string
}

func newDemoCmd(env Env) *cobra.Command {
	var o demoOpts
	c := leafCmd("demo", "demo [--duration D] [--keep] [--large SIZE] [--report FILE.html]", demoLong, demoExample,
		func(ctx context.Context) error { return runDemo(ctx, env, o) })
	fs := c.Flags()
	durationVar(fs, &o.duration, "duration", 90*time.Second, "length of the link walk (six equal steps)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, stores, certificates)")
	fs.StringVar(&o.largeSize, "large", "16MiB", "size of the large background file")
	fs.StringVar(&o.report, "report", "", "write an HTML report of the run to `FILE`")
	return c
}

func runDemo(ctx context.Context, env Env, o demoOpts) error {
	duration, keep, largeSize := &o.duration, &o.keep, &o.largeSize
	if *duration < 10*time.Second {
		return usagef("demo", "--duration must be at least 10s, got %s", units.FormatDuration(*duration))
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
	d := &demo{env: env, dir: dir, step: *duration / time.Duration(len(demoWalk())), large: large}
	if err := d.openReport(o.report); err != nil {
		return err
	}
	defer d.discardReport()
	return d.run(ctx)
}

type demo struct {
	env   Env
	dir   string
	step  time.Duration
	large int64

	store    coreStore // the core's, read to verify
	coreAddr net.Addr
	relay    *linksim.Relay
	agent    *agent.Agent

	mu       sync.Mutex
	sent     map[edgesync.OpID]demoOp // every op the agent accepted
	lastByKy map[string]edgesync.OpID // newest state op per key
	dropped  map[edgesync.OpID]outbox.Reason
	largeID  edgesync.OpID
	walkName string
	refused  int         // puts the agent refused (not accepted, so not verified)
	firstRef error       // the first of them
	rep      *demoReport // --report's, or nil (demo_report.go)
	truth    []truthStep // what the agent showed per step (demo_truth.go)
}

// demoAgent is the demo agent's name, its certificate's.
const demoAgent = "demo-site"

type demoOp struct {
	key      string
	kind     edgesync.OpKind
	priority edgesync.Priority
	hash     [32]byte
	size     int64
}

// run starts the parts, walks the link under load, drains what is left
// and verifies at the core.
func (d *demo) run(ctx context.Context) (err error) {
	walk := demoWalk()
	stop, err := d.start(ctx, walk[0].profile)
	if err != nil {
		return err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = fmt.Errorf("demo: stopping: %w", serr)
		}
	}()
	out := d.env.Stdout
	fmt.Fprintf(out, "edge-sync demo: core %s, link emulator %s, agent %q; logs in %s\n", d.coreAddr, d.relay.Addr(), demoAgent, d.dir)
	fmt.Fprintf(out, "link walk: %s, %s each\n\n", walkNames(walk), d.step)

	// Drops are watched until verification: a state op may be superseded
	// while the rest drains.
	dctx, stopDrops := context.WithCancel(ctx)
	dropsDone := make(chan struct{})
	go func() { defer close(dropsDone); d.watchDrops(dctx) }()
	defer func() { stopDrops(); <-dropsDone }()

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if err := d.walkUnderLoad(ctx, walk, start, tick.C); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n── workload stopped; draining what is left")
	d.drain(ctx, start, tick.C)
	stopDrops()
	<-dropsDone
	d.printTruth(out)
	return d.reportAfter(d.verify(out))
}

// start makes the certificates and starts the core, the link emulator
// (with profile) in front of it and the agent, each logging to a file in
// the demo's directory; stop stops them in reverse order.
func (d *demo) start(ctx context.Context, profile linksim.Profile) (stop func() error, err error) {
	var stops stopper
	defer func() {
		if err != nil {
			if serr := stops.stop(); serr != nil {
				err = fmt.Errorf("%w (and stopping what had started: %v)", err, serr)
			}
		}
	}()
	pkiDir := filepath.Join(d.dir, "pki")
	if err := demoCerts(pkiDir); err != nil {
		return nil, err
	}
	clog, closeLog, err := d.logger("core")
	if err != nil {
		return nil, err
	}
	stops.add(closeLog)
	cr, stopCore, err := startCore(ctx, demoCoreConfig(d.dir, pkiDir), clog)
	if err != nil {
		return nil, fmt.Errorf("demo core: %w", err)
	}
	stops.add(stopCore)
	d.store, d.coreAddr = cr.store, cr.addr

	d.relay, err = linksim.NewRelay(linksim.RelayConfig{Target: cr.addr.String(), Profile: profile})
	if err != nil {
		return nil, fmt.Errorf("demo link emulator: %w", err)
	}
	stops.add(d.relay.Close)

	alog, closeLog, err := d.logger("agent")
	if err != nil {
		return nil, err
	}
	stops.add(closeLog)
	d.sent, d.lastByKy, d.dropped = map[edgesync.OpID]demoOp{}, map[string]edgesync.OpID{}, map[edgesync.OpID]outbox.Reason{}
	a, stopAgent, err := startAgent(ctx, demoAgentConfig(d.dir, pkiDir, d.relay.Addr().String()), agent.Options{Logger: alog})
	if err != nil {
		return nil, fmt.Errorf("demo agent: %w", err)
	}
	stops.add(stopAgent)
	d.agent = a
	return stops.stop, nil
}

// logger returns a logger writing to NAME.log in the demo's directory, and
// the file's Close.
func (d *demo) logger(name string) (hclog.Logger, func() error, error) {
	f, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return nil, nil, err
	}
	log, err := logging.New(name, f, "info", "text")
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return log, f.Close, nil
}

// demoCoreConfig is the demo core's config: on loopback, its data in dir.
func demoCoreConfig(dir, pkiDir string) config.Core {
	cfg := config.DefaultCore()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "core")
	cfg.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "core.pem"), Key: filepath.Join(pkiDir, "core-key.pem")}
	return cfg
}

// demoAgentConfig is the demo agent's config: one endpoint "core" at
// coreAddr (the link emulator), sampling fast and batching every few
// seconds, as the demo compresses a day into a minute.
func demoAgentConfig(dir, pkiDir, coreAddr string) config.Agent {
	cfg := config.DefaultAgent()
	cfg.Name = demoAgent
	cfg.DataDir = filepath.Join(dir, "agent")
	cfg.TLS = config.TLS{CA: filepath.Join(pkiDir, "ca.pem"), Cert: filepath.Join(pkiDir, "agent-demo-site.pem"), Key: filepath.Join(pkiDir, "agent-demo-site-key.pem")}
	cfg.Monitor.SampleInterval = 250 * time.Millisecond
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	for class, iv := range map[edgesync.LinkClass]time.Duration{edgesync.Mobile: 2 * time.Second, edgesync.Satellite: 4 * time.Second, edgesync.Unknown: time.Second} {
		cfg.Profiles[class] = config.Profile{Interval: &iv}
	}
	return cfg
}

// walkUnderLoad runs the workload while the link walks through its steps,
// printing the live view on every tick; the large file goes in at the
// second step.
func (d *demo) walkUnderLoad(ctx context.Context, walk []demoStep, start time.Time, tick <-chan time.Time) error {
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.workload(wctx) }()
	defer func() { stopWork(); wg.Wait() }()
	out := d.env.Stdout
	for i, st := range walk {
		if err := d.relay.SetProfile(st.profile); err != nil {
			return err
		}
		d.mu.Lock()
		d.walkName = st.name
		d.noteTruthStep(st, time.Now())
		d.mu.Unlock()
		fmt.Fprintf(out, "── link → %s (%s)\n", st.name, st.profile.Summary)
		d.noteStep(st)
		if i == 1 {
			d.enqueueLarge(ctx)
		}
		// The satellite-only step's log file goes in once the agent has
		// classed the link satellite, so that its summary goes first.
		logFile := i == len(walk)-1
		end := time.After(d.step)
	step:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-end:
				break step
			case <-tick:
				d.printLine(out, time.Since(start))
				if st, err := d.agent.Status("core"); logFile && err == nil && st.Class == edgesync.Satellite {
					d.enqueueBackfill(ctx)
					logFile = false
				}
			}
		}
	}
	return nil
}

// drain prints the live view until the outbox is empty, for at most
// max(60 s, two steps, twice the agent's drain estimate), and never more
// than 10 minutes: the walk ends on satellite, where what is left drains
// at 2 Mbit/s, and a loaded machine measures less.
func (d *demo) drain(ctx context.Context, start time.Time, tick <-chan time.Time) {
	wait := max(60*time.Second, 2*d.step)
	if st, err := d.agent.Status("core"); err == nil {
		wait = min(max(wait, 2*st.DrainETA), 10*time.Minute)
		fmt.Fprintf(d.env.Stdout, "   drain ETA %s, waiting up to %s\n", units.FormatDuration(st.DrainETA.Round(time.Second)), units.FormatDuration(wait.Round(time.Second)))
	}
	drainBy := time.Now().Add(wait)
	for !d.drained() && time.Now().Before(drainBy) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick:
			d.printLine(d.env.Stdout, time.Since(start))
		}
	}
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
func (d *demo) put(ctx context.Context, key string, p edgesync.Priority, kind edgesync.OpKind, payload []byte, summary []byte) (edgesync.OpID, error) {
	op, err := d.agent.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: key, Priority: p, Kind: kind, Payload: bytes.NewReader(payload), Summary: summary})
	if err != nil {
		return edgesync.OpID{}, err
	}
	d.mu.Lock()
	d.sent[op.ID] = demoOp{key: key, kind: kind, priority: p, hash: sha256.Sum256(payload), size: int64(len(payload))}
	if kind == edgesync.StateOp {
		d.lastByKy[key] = op.ID
	}
	d.mu.Unlock()
	return op.ID, nil
}

// putOrNote puts an op, counting a refusal by the agent for the summary.
func (d *demo) putOrNote(ctx context.Context, key string, p edgesync.Priority, kind edgesync.OpKind, payload []byte, summary []byte) {
	if _, err := d.put(ctx, key, p, kind, payload, summary); err != nil {
		d.noteRefused(ctx, err)
	}
}

// noteRefused counts a put the agent refused; one cut short by the end of
// the workload is not a refusal.
func (d *demo) noteRefused(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refused == 0 {
		d.firstRef = err
	}
	d.refused++
}

// workload is the mixed producer load: alarms, schema changes, sensor
// records with repeated keys, analytics events.
func (d *demo) workload(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(7, 11))
	sensors := make([][]byte, 16)
	for i := range sensors {
		sensors[i] = demodata.SensorRecord(rnd, i, 0)
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
		sensors[i] = demodata.SensorRecord(rnd, i, n)
		d.putOrNote(ctx, fmt.Sprintf("sensors/pump-%02d", i), edgesync.Normal, edgesync.StateOp, sensors[i],
			[]byte(fmt.Sprintf(`{"pump":%d,"n":%d}`, i, n)))
		if n%15 == 0 {
			alarm := fmt.Sprintf(`{"alarm":"pressure high","pump":%d,"n":%d,"at":%q}`, rnd.IntN(16), n, time.Now().Format(time.RFC3339Nano))
			d.putOrNote(ctx, "alarms", edgesync.Critical, edgesync.EventOp, []byte(alarm), nil)
		}
		if n%5 == 0 {
			ev := bytes.Repeat([]byte(fmt.Sprintf(`{"metric":"flow","v":%d}`, rnd.IntN(1000))), 200)
			d.putOrNote(ctx, "analytics/flow", edgesync.Analytics, edgesync.EventOp, ev, []byte("flow samples"))
		}
		if n%100 == 0 {
			schema := fmt.Sprintf(`{"table":"readings","version":%d,"columns":["pump","pressure","flow","temp"]}`, n/100+1)
			d.putOrNote(ctx, "schema/readings", edgesync.Schema, edgesync.StateOp, []byte(schema), nil)
		}
	}
}

func (d *demo) enqueueLarge(ctx context.Context) {
	data := demodata.LargeFile(rand.New(rand.NewPCG(3, 5)), int(d.large))
	id, err := d.put(ctx, "files/camera-archive.tar", edgesync.Background, edgesync.EventOp, data, []byte("camera archive, 1 day"))
	if err != nil {
		d.noteRefused(ctx, err)
		return
	}
	d.mu.Lock()
	d.largeID = id
	d.mu.Unlock()
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
	d.noteTruth(st, time.Now())
	var q []string
	for _, p := range edgesync.Priorities() {
		q = append(q, fmt.Sprintf("%c%d", p.String()[0], st.Backlog[p.String()].Ops))
	}
	d.mu.Lock()
	link, largeID, large := d.walkName, d.largeID, d.large
	d.mu.Unlock()
	bar := ""
	if !largeID.IsZero() {
		held, ok := d.store.PartialSize(demoAgent, largeID)
		if !ok {
			// A read error shows as no progress on this live line; verify
			// reports what matters.
			if done, err := d.store.Applied(demoAgent, largeID); err == nil && done {
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

// enqueueBackfill puts a background log file of an eighth of the large
// file's size (256 KiB to 2 MiB) on the satellite-only step: its summary
// goes first, its full data follows as backfill, and the live view's bar
// follows it.
func (d *demo) enqueueBackfill(ctx context.Context) {
	n := min(2<<20, max(256<<10, d.large/8))
	rnd := rand.New(rand.NewPCG(5, 8))
	var b bytes.Buffer
	for b.Len() < int(n) {
		fmt.Fprintf(&b, "%08x pump %02d pressure %.2f ok\n", rnd.Uint32(), rnd.IntN(16), 3+rnd.Float64())
	}
	id, err := d.put(ctx, "files/engine-log.txt", edgesync.Background, edgesync.EventOp, b.Bytes()[:n], []byte("engine log, last hour"))
	if err != nil {
		d.noteRefused(ctx, err)
		return
	}
	d.mu.Lock()
	d.largeID, d.large = id, n
	d.mu.Unlock()
}
