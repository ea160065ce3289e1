package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLogsAreStructured(t *testing.T) {
	var buf bytes.Buffer
	l, err := New("edge-sync", &buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Named("linkmon").Info("link class changed", "endpoint", "core", "from", "fiber", "to", "satellite")
	l.Debug("hidden")
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["@module"] != "edge-sync.linkmon" || rec["to"] != "satellite" || rec["@level"] != "info" {
		t.Errorf("record = %v", rec)
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	if _, err := New("x", &bytes.Buffer{}, "loud", "text"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("bad level: %v", err)
	}
	if _, err := New("x", &bytes.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("bad format: %v", err)
	}
}
