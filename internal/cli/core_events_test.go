package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestCoreEventCommands: on both backends, events are readable with their
// payloads (core ls --events, core get --event, core tail --payload, -o
// DIR, --json), tail --follow prints an event that arrives while it runs,
// and the running core (its admin socket) and the stopped one (its store)
// print the same.
func TestCoreEventCommands(t *testing.T) {
	for _, backend := range []string{config.BackendBolt, config.BackendJetStream} {
		t.Run(backend, func(t *testing.T) { testCoreEvents(t, backend) })
	}
}

func testCoreEvents(t *testing.T, backend string) {
	dir, cfg := testCoreConfig(t)
	store := ""
	if backend == config.BackendJetStream {
		srv := natstest.Run(t)
		cfg.Store.Backend = backend
		cfg.Store.JetStream.URLs = []string{srv.URL()}
		cfg.Store.JetStream.Prefix = "cli"
		store = fmt.Sprintf("store {\n  backend = \"jetstream\"\n  urls = [%q]\n  prefix = \"cli\"\n}\n", srv.URL())
	}
	coreHCL := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), cfg, store)
	cr, stop := startTestCore(t, cfg)
	payloads := map[uint64][]byte{}
	var seqs []uint64
	apply := func(n byte, key string, data []byte) {
		t.Helper()
		res := cr.storeOp(t, "site-1", n, edgesync.EventOp, key, data)
		payloads[res.Seq] = data
		seqs = append(seqs, res.Seq)
	}
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	large := bytes.Repeat([]byte("large event "), 30_000) // 360 KB: chunked on JetStream
	apply(1, "alarms", []byte("pump-3 overpressure"))
	apply(2, "alarms", []byte("pump-3 ok\n"))
	apply(3, "raw", binary)
	apply(4, "big", large)

	c := []string{"--config", coreHCL, "--agent", "site-1"}
	read := func(phase string) map[string]string {
		t.Helper()
		out := map[string]string{}
		cmd := func(name string, args ...string) {
			t.Helper()
			o, _, err := run(t, args...)
			if err != nil {
				t.Fatalf("%s: %s: %v", phase, name, err)
			}
			out[name] = o
		}
		cmd("ls --events", append([]string{"core", "ls", "--events"}, c...)...)
		cmd("tail --payload", append([]string{"core", "tail", "--payload"}, c...)...)
		cmd("tail --json --payload", append([]string{"core", "tail", "--json", "--payload"}, c...)...)
		for _, seq := range seqs {
			cmd("get "+strconv.FormatUint(seq, 10), append([]string{"core", "get", "--event", strconv.FormatUint(seq, 10)}, c...)...)
		}
		files := filepath.Join(dir, phase)
		cmd("tail -o", append([]string{"core", "tail", "-o", files}, c...)...)
		for _, seq := range seqs {
			out["file "+strconv.FormatUint(seq, 10)] = readFile(t, filepath.Join(files, strconv.FormatUint(seq, 10)))
		}
		return out
	}
	check := func(phase string, out map[string]string) {
		t.Helper()
		if n := strings.Count(out["ls --events"], "\n"); n != 5 || !strings.HasPrefix(out["ls --events"], eventsHeader+"\n") || !strings.Contains(out["ls --events"], "alarms") {
			t.Errorf("%s: ls --events:\n%s", phase, out["ls --events"])
		}
		for _, seq := range seqs {
			s := strconv.FormatUint(seq, 10)
			if out["get "+s] != string(payloads[seq]) || out["file "+s] != string(payloads[seq]) {
				t.Errorf("%s: event %d: get --event gave %d bytes, tail -o %d; want %d", phase, seq, len(out["get "+s]), len(out["file "+s]), len(payloads[seq]))
			}
		}
		want := fmt.Sprintf("%s\n%d\t", eventsHeader, seqs[0])
		if tp := out["tail --payload"]; !strings.HasPrefix(tp, want) || !strings.Contains(tp, "\npump-3 overpressure\n") || !strings.Contains(tp, "\npump-3 ok\n") {
			t.Errorf("%s: tail --payload:\n%.300s", phase, tp)
		}
		dec := json.NewDecoder(strings.NewReader(out["tail --json --payload"]))
		n := 0
		for dec.More() {
			var e struct {
				admin.EventInfo
				Payload []byte `json:"payload"`
			}
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("%s: tail --json --payload: %v", phase, err)
			}
			if !bytes.Equal(e.Payload, payloads[e.Seq]) {
				t.Errorf("%s: tail --json: event %d payload differs", phase, e.Seq)
			}
			n++
		}
		if n != 4 {
			t.Errorf("%s: tail --json printed %d events", phase, n)
		}
	}
	running := read("running")
	check("running", running)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	fromStore := read("stopped")
	for name, o := range running {
		if name[:4] != "file" && fromStore[name] != o {
			t.Errorf("%s differs between the running core and its store:\n%.200s\n---\n%.200s", name, o, fromStore[name])
		}
	}

	// Started again: tail --follow prints an event stored while it runs.
	cr, _ = startTestCore(t, cfg) // stopped by the test's cleanup
	ctx, cancel := context.WithCancel(context.Background())
	var follow testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"core", "tail", "--follow", "--payload"}, c...), Env{Stdout: &follow, Stderr: &follow})
	}()
	waitOutput(t, &follow, regexp.MustCompile(`pump-3 ok`), "tail --follow to print the events stored")
	if !strings.HasPrefix(follow.String(), eventsHeader+"\n") {
		t.Errorf("tail --follow does not start with the header %q:\n%.200s", eventsHeader, follow.String())
	}
	apply(5, "alarms", []byte("pump-4 overpressure"))
	waitOutput(t, &follow, regexp.MustCompile(fmt.Sprintf(`(?m)^%d\t.*\npump-4 overpressure$`, seqs[4])), "tail --follow to print a new event and its payload")
	cancel()
	if err := testutil.Returned(t, done, 10*time.Second, "tail --follow to stop after its context ended"); err != nil {
		t.Fatalf("tail --follow: %v", err)
	}

}
