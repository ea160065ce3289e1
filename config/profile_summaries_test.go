package config

import (
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestProfileSummaries: a profile says whether summaries go first and for
// which priorities; critical, schema or an unknown name is an error that
// names the field, its line and what to write instead.
func TestProfileSummaries(t *testing.T) {
	base := "tls {\n  ca = \"a\"\n  cert = \"b\"\n  key = \"c\"\n}\nendpoint \"core\" { address = \"h:1\" }\n"
	c, err := ParseAgent(strings.NewReader(base+`profile "satellite" {
  summary_only       = true
  summary_priorities = ["analytics", "background"]
}
profile "mobile" {
  summary_priorities = []
}
`), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	sat := c.Profiles[edgesync.Satellite]
	if sat.SummaryOnly == nil || !*sat.SummaryOnly || len(sat.SummaryPriorities) != 2 || sat.SummaryPriorities[0] != edgesync.Analytics {
		t.Fatalf("satellite profile: %+v", sat)
	}
	if m := c.Profiles[edgesync.Mobile]; m.SummaryPriorities == nil || len(m.SummaryPriorities) != 0 || m.SummaryOnly != nil {
		t.Fatalf("mobile profile: an empty list must stay an empty list: %+v", m)
	}
	for line, want := range map[string]string{
		`profile "satellite" { summary_priorities = ["critical"] }`: `profile "satellite".summary_priorities: critical ops always go in full at once; list high, normal, analytics or background`,
		`profile "satellite" { summary_priorities = ["soon"] }`:     `profile "satellite".summary_priorities: unknown priority "soon"`,
	} {
		_, err := ParseAgent(strings.NewReader(base+line+"\n"), "agent.hcl")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "agent.hcl:7") {
			t.Errorf("%s:\n got  %v\n want agent.hcl:7 ... %s", line, err, want)
		}
	}
}
