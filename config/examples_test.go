package config

import "testing"

// The shipped examples must load: they are what operators copy.
func TestExamplesLoad(t *testing.T) {
	if _, err := LoadAgent("../examples/agent.hcl"); err != nil {
		t.Errorf("examples/agent.hcl: %v", err)
	}
	if _, err := LoadCore("../examples/core.hcl"); err != nil {
		t.Errorf("examples/core.hcl: %v", err)
	}
	if c, err := LoadCore("../examples/core-jetstream.hcl"); err != nil || c.Store.Backend != BackendJetStream {
		t.Errorf("examples/core-jetstream.hcl: %v", err)
	}
}
