package demodata

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestSensorRecord: a record is valid JSON of about 2 KiB, the same for
// the same seed, and the next step's differs from it.
func TestSensorRecord(t *testing.T) {
	r := SensorRecord(rand.New(rand.NewPCG(7, 11)), 3, 10)
	var v struct {
		Pump     int               `json:"pump"`
		Seq      int               `json:"seq"`
		Readings []json.RawMessage `json:"readings"`
	}
	if err := json.Unmarshal(r, &v); err != nil || v.Pump != 3 || v.Seq != 10 || len(v.Readings) != 120 {
		t.Fatalf("record %.80s…: %v, %+v; want pump 3, seq 10, 120 readings", r, err, v)
	}
	if len(r) < 3<<9 || len(r) > 5<<9 {
		t.Errorf("record of %d bytes, want about 2 KiB", len(r))
	}
	if again := SensorRecord(rand.New(rand.NewPCG(7, 11)), 3, 10); !bytes.Equal(again, r) {
		t.Error("the same seed gave another record")
	}
	if next := SensorRecord(rand.New(rand.NewPCG(7, 11)), 3, 11); bytes.Equal(next, r) {
		t.Error("the next step's record is the same")
	}
}

// TestLargeFile: the file has the size asked for, and its text blocks
// are text.
func TestLargeFile(t *testing.T) {
	for _, size := range []int{0, 100, 4096, 3*4096 + 5} {
		d := LargeFile(rand.New(rand.NewPCG(3, 5)), size)
		if len(d) != size {
			t.Fatalf("LargeFile(%d) has %d bytes", size, len(d))
		}
		if size > 4096 && !bytes.HasPrefix(d[4096:], []byte("log line: ")) {
			t.Errorf("LargeFile(%d): the second block is not log text: %q", size, d[4096:4106])
		}
	}
}
