// Package demodata makes the payloads of the demo's workload: a pump's
// sensor record and the large file. The demo (internal/cli) puts them,
// and the agent's backlog benchmark leaves the same ones in an outbox, so
// that its figures speak of what the demo sends.
package demodata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// SensorRecord returns pump's ~2 KiB JSON record at step n, of which a
// few fields change from one step to the next (what deltas save on).
func SensorRecord(rnd *rand.Rand, pump, n int) []byte {
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

// LargeFile returns size bytes in 4 KiB blocks, random (from rnd) and log
// text in turn: half of it zstd saves, half it does not.
func LargeFile(rnd *rand.Rand, size int) []byte {
	data := make([]byte, size)
	for i := 0; i < len(data); i += 4096 {
		end := min(i+4096, len(data))
		if (i/4096)%2 == 0 {
			for j := i; j < end; j++ {
				data[j] = byte(rnd.Uint32())
			}
		} else {
			copy(data[i:end], bytes.Repeat([]byte("log line: pump ok, pressure nominal\n"), 120))
		}
	}
	return data
}
