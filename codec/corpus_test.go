package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// corpus is a base and a new version of it, made deterministically.
type corpus struct {
	name      string
	base, new []byte
}

// logCorpus is an append-only log of size n grown by 1 %.
func logCorpus(n int) corpus {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	levels := []string{"INFO", "WARN", "DEBUG", "ERROR"}
	comps := []string{"outbox", "sender", "linkmon", "core", "wire"}
	line := 0
	write := func(limit int) {
		for b.Len() < limit {
			line++
			fmt.Fprintf(&b, "2026-11-27T04:%02d:%02d.%06dZ %-5s %s: op=%016x seq=%d bytes=%d rtt=%dms msg=%q\n",
				line/60%60, line%60, rng.IntN(1e6), levels[rng.IntN(len(levels))], comps[rng.IntN(len(comps))],
				rng.Uint64(), line, rng.IntN(1<<20), rng.IntN(900), fmt.Sprintf("batch %d of %d", rng.IntN(64), 64))
		}
	}
	write(n)
	base := bytes.Clone(b.Bytes())
	write(n + n/100)
	return corpus{"log", base, b.Bytes()}
}

// jsonCorpus is a JSON-lines record file of size n with 2 % of records
// edited (values changed, so record lengths change a little).
func jsonCorpus(n int) corpus {
	rng := rand.New(rand.NewPCG(3, 4))
	type rec struct{ id, temp, hum, status int }
	var recs []rec
	var b bytes.Buffer
	format := func(r rec) string {
		return fmt.Sprintf(`{"id":%d,"sensor":"s-%04d","site":"mine-%02d","temp_c":%d.%d,"humidity":%d,"status":"%s","tags":["edge","batch-%d"]}`+"\n",
			r.id, r.id%9973, r.id%37, r.temp/10, r.temp%10, r.hum, []string{"ok", "warn", "fault"}[r.status], r.id%17)
	}
	for b.Len() < n {
		r := rec{id: len(recs), temp: rng.IntN(600), hum: rng.IntN(100), status: rng.IntN(3)}
		recs = append(recs, r)
		b.WriteString(format(r))
	}
	base := bytes.Clone(b.Bytes())
	b.Reset()
	for _, r := range recs {
		if rng.IntN(100) < 2 {
			r.temp, r.hum, r.status = rng.IntN(6000), rng.IntN(1000), rng.IntN(3)
		}
		b.WriteString(format(r))
	}
	return corpus{"json", base, b.Bytes()}
}

// blobCorpus is a binary blob of size n (half random, half structured
// records, like a firmware image or a packed array) with 1 % of bytes changed
// at scattered places and a 4 KiB insertion in the middle.
func blobCorpus(n int) corpus {
	rng := rand.New(rand.NewPCG(5, 6))
	base := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		page := base[i:min(i+4096, n)]
		if (i/4096)%2 == 0 {
			for j := range page {
				page[j] = byte(rng.Uint32())
			}
			continue
		}
		for j := 0; j+8 <= len(page); j += 8 {
			v := uint64(i+j)*2654435761 ^ uint64(rng.IntN(16))
			for k := range 8 {
				page[j+k] = byte(v >> (8 * k))
			}
		}
	}
	nw := bytes.Clone(base)
	for range n / 100 {
		nw[rng.IntN(n)] = byte(rng.Uint32())
	}
	ins := make([]byte, 4096)
	for i := range ins {
		ins[i] = byte(rng.Uint32())
	}
	mid := n / 2
	nw = append(nw[:mid], append(ins, nw[mid:]...)...)
	return corpus{"blob", base, nw}
}

func corpora(n int) []corpus { return []corpus{logCorpus(n), jsonCorpus(n), blobCorpus(n)} }
