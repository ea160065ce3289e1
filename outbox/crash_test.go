package outbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

// The crash test re-executes the test binary as a writer child; TestMain
// hands control to crashChild when this variable names the outbox file.
const crashChildEnv = "OUTBOX_CRASH_CHILD"

// crashOpts are the child's and parent's options: tiny chunks and one chunk
// per transaction, so most payloads take several transactions and a kill
// often lands between them.
var crashOpts = Options{chunkSize: 256, stageChunks: 1}

// crashChild enqueues from three producers until killed, printing
// "producer id size" once each Enqueue returned. It never returns.
func crashChild() {
	path := os.Getenv(crashChildEnv)
	o, err := Open(path, crashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for k := range 3 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(k)))
			for {
				size := rng.IntN(1500)
				prio := edgesync.Priority(k + 3*rng.IntN(2))
				// The payload depends on size only, so the parent can check it.
				op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "core", Key: strconv.Itoa(k),
					Priority: prio, Payload: bytes.NewReader(payloadOf(byte(size), size))})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child enqueue:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%d %s %d\n", k, op.ID, size)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Minute) // the parent kills us long before; this bounds an orphan
	os.Exit(4)
}

type printed struct {
	producer int
	id       edgesync.OpID
	size     int
}

func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary 25 times")
	}
	t.Parallel() // waits on fsyncs and process starts, not CPU
	path := tempPath(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var all []printed
	acked := map[edgesync.OpID]bool{}
	const rounds = 25
	swept := 0 // crashed multi-transaction enqueues that Open had to sweep
	for round := range rounds {
		lines := runAndKill(t, path, 1+rng.IntN(30))
		all = append(all, lines...)
		swept += pendingOnDisk(t, path)

		o, err := Open(path, crashOpts)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if n := countBucket(t, o, bucketPending); n != 0 {
			t.Fatalf("round %d: %d pending markers after Open's sweep", round, n)
		}
		stored := map[edgesync.OpID]Op{}
		var order []edgesync.OpID // by priority, then FIFO
		total := 0
		for p := range edgesync.Priority(edgesync.NumPriorities) {
			ops, err := o.List("core", p, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(ids(ops), edgesync.OpID.Compare) {
				t.Fatalf("round %d: priority %s not in ID order", round, p)
			}
			for _, op := range ops {
				if _, dup := stored[op.ID]; dup {
					t.Fatalf("round %d: op %s stored twice", round, op.ID)
				}
				stored[op.ID] = op
				order = append(order, op.ID)
			}
			total += len(ops)
		}
		s, _ := o.Stats()
		if s.Total.Ops != total || len(stored) != total {
			t.Fatalf("round %d: stats count %d, listed %d", round, s.Total.Ops, total)
		}
		// Every printed, unacked ID is there exactly once with its payload;
		// acked IDs stay gone.
		pos := map[edgesync.OpID]int{}
		for i, id := range order {
			pos[id] = i
		}
		last := map[[2]int]int{} // (producer, priority) -> position of previous op
		for _, l := range all {
			op, ok := stored[l.id]
			if acked[l.id] {
				if ok {
					t.Fatalf("round %d: acked op %s came back", round, l.id)
				}
				continue
			}
			if !ok {
				t.Fatalf("round %d: op %s printed by producer %d is missing", round, l.id, l.producer)
			}
			if op.Size != int64(l.size) || op.Key != strconv.Itoa(l.producer) {
				t.Fatalf("round %d: op %s size %d key %q, printed %d by %d", round, l.id, op.Size, op.Key, l.size, l.producer)
			}
			k := [2]int{l.producer, int(op.Priority)}
			if prev, seen := last[k]; seen && pos[l.id] < prev {
				t.Fatalf("round %d: producer %d priority %s out of order at %s", round, l.producer, op.Priority, l.id)
			}
			last[k] = pos[l.id]
		}
		for _, l := range lines {
			if got := readAll(t, o, l.id); !bytes.Equal(got, payloadOf(byte(l.size), l.size)) {
				t.Fatalf("round %d: payload of %s differs", round, l.id)
			}
		}
		// Ack about a third of what is stored, so deletes are crashed on too.
		var ack []edgesync.OpID
		for id := range stored {
			if rng.IntN(3) == 0 {
				ack = append(ack, id)
				acked[id] = true
			}
		}
		if err := o.Ack(ack...); err != nil {
			t.Fatal(err)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path)
	}
	t.Logf("%d rounds, %d ops printed before SIGKILL, %d acked, %d half-written ops swept", rounds, len(all), len(acked), swept)
	if swept == 0 {
		t.Fatal("no kill landed inside a multi-transaction enqueue; the sweep was not exercised")
	}
}

// runAndKill starts a writer child, SIGKILLs it once it printed n IDs (or
// exited) and returns every line it printed.
func runAndKill(t *testing.T, path string, n int) []printed {
	t.Helper()
	var stderr bytes.Buffer
	cmd, out := testutil.StartChild(t, &stderr, crashChildEnv+"="+path)
	got := make(chan printed)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			var l printed
			var err error
			if len(f) != 3 {
				err = fmt.Errorf("bad child line %q", sc.Text())
			} else if l.producer, err = strconv.Atoi(f[0]); err == nil {
				if l.id, err = edgesync.ParseOpID(f[1]); err == nil {
					l.size, err = strconv.Atoi(f[2])
				}
			}
			if err != nil {
				done <- err
				return
			}
			got <- l
		}
		done <- sc.Err()
	}()
	var lines []printed
	timeout := time.After(60 * time.Second)
	killed := false
	for {
		select {
		case l := <-got:
			lines = append(lines, l)
			if len(lines) == n && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		case err := <-done:
			werr := cmd.Wait()
			if err != nil {
				t.Fatalf("reading child output: %v", err)
			}
			if !killed {
				t.Fatalf("child exited before it was killed: %v; stderr: %s", werr, stderr.String())
			}
			return lines
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("child printed %d of %d lines in 60 s; stderr: %s", len(lines), n, stderr.String())
		}
	}
}

// pendingOnDisk counts the pending markers in a closed outbox file.
func pendingOnDisk(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	return n
}
