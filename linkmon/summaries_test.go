package linkmon

import (
	"encoding/json"
	"errors"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestSummarySetJSON: the set reads and writes priority names, refuses
// critical and schema with an error that says why, and an override
// replaces the class's set (an empty list: no summaries).
func TestSummarySetJSON(t *testing.T) {
	var s SummarySet
	if err := json.Unmarshal([]byte(`["background","Analytics"]`), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Has(edgesync.Background) || !s.Has(edgesync.Analytics) || s.Has(edgesync.Normal) || s.String() != "analytics,background" {
		t.Fatalf("parsed %v (%08b)", s, uint8(s))
	}
	b, err := json.Marshal(DefaultSummaries)
	if err != nil || string(b) != `["normal","analytics","background"]` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	for _, bad := range []string{`["critical"]`, `["schema","normal"]`, `["sometimes"]`, `"normal"`} {
		err := json.Unmarshal([]byte(bad), &s)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: error %v, want ErrInvalidConfig", bad, err)
		}
	}
	var o Override
	if err := json.Unmarshal([]byte(`{"summary_priorities":[]}`), &o); err != nil || o.Summaries == nil {
		t.Fatalf("override: %+v, %v", o, err)
	}
	p := o.Apply(DefaultProfiles()[edgesync.Satellite]).Params
	if p.SummaryFirst(edgesync.Background) || !p.SummaryOnly {
		t.Fatalf("an empty list must leave no priority summary-first: %v", p)
	}
	if (SyncParameters{SummaryOnly: false, Summaries: DefaultSummaries}).SummaryFirst(edgesync.Normal) {
		t.Fatal("summary_only off must send nothing summary-first")
	}
}
