package core

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/config"
)

// TestNewFromConfig checks that OpenStore and New carry every field of
// config.Core the store and server use, and refuse an invalid config.
func TestNewFromConfig(t *testing.T) {
	cfg := config.DefaultCore()
	cfg.Name = "core-eu"
	cfg.DataDir = filepath.Join(t.TempDir(), "data", "core")
	cfg.TLS = config.TLS{CA: "ca.pem", Cert: "core.pem", Key: "core-key.pem"}
	cfg.DefaultQuota = 5 << 20
	cfg.Agents = []config.CoreAgent{{Name: "ship-7", Quota: 7 << 20}, {Name: "ship-8"}}
	cfg.Limits.MaxOpBytes, cfg.Limits.MaxStreams, cfg.Limits.MaxConnections = 3<<20, 7, 9
	cfg.Store.EventRetention, cfg.Store.DedupMaxEntries = 1234, 5678
	cfg.Store.DedupRetention, cfg.Store.PartialMaxAge = 90*time.Hour, 3*time.Hour

	store, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.path != filepath.Join(cfg.DataDir, "core.db") {
		t.Errorf("store at %s, want under data_dir", store.path)
	}
	sc := store.cfg
	if sc.Quota != 5<<20 || sc.MaxObjectSize != 3<<20 || sc.EventMaxCount != 1234 || sc.AppliedMaxCount != 5678 ||
		sc.AppliedMaxAge != 90*time.Hour || sc.PartialMaxAge != 3*time.Hour {
		t.Errorf("store config %+v does not carry the core config", sc)
	}
	if q := sc.AgentQuota("ship-7"); q != 7<<20 {
		t.Errorf("ship-7 quota %d, want its own 7 MiB", q)
	}
	if q := sc.AgentQuota("ship-8"); q != 5<<20 {
		t.Errorf("ship-8 quota %d, want default_quota", q)
	}

	tlsConf := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	srv, err := New(cfg, store, Options{TLS: tlsConf, DisableLane: true})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.cfg
	if c.Name != "core-eu" || c.MaxOpBytes != 3<<20 || c.MaxStreams != 7 || c.MaxConnections != 9 || !c.DisableLane || c.Store != store {
		t.Errorf("server config %+v does not carry the core config", c)
	}
	if _, ok := c.Allow("ship-7"); !ok {
		t.Error("a listed agent is refused")
	}
	if _, ok := c.Allow("ship-9"); ok {
		t.Error("an agent not listed is let in")
	}

	bad := cfg
	bad.Limits.MaxStreams = 0
	if _, err := New(bad, store, Options{TLS: tlsConf}); err == nil || !strings.Contains(err.Error(), "limits.max_streams") {
		t.Errorf("invalid config: want an error naming limits.max_streams, got %v", err)
	}
	if _, err := OpenStore(bad); err == nil || !strings.Contains(err.Error(), "limits.max_streams") {
		t.Errorf("invalid config: want an error naming limits.max_streams, got %v", err)
	}
}

// The store's and the server's zero-value defaults (a library user's
// core.Open or NewServer without a config file) are the config file's
// defaults: one set, in config.DefaultCore. They had drifted: a store
// opened without a config kept 10,000,000 applied op IDs per agent and
// took ops of 16 GiB, where a core started from a file keeps 1,000,000
// and takes 1 GiB.
func TestZeroConfigTakesTheFilesDefaults(t *testing.T) {
	want := StoreConfig(config.DefaultCore())
	got := Config{}.withDefaults()
	if got.MaxObjectSize != want.MaxObjectSize || got.EventMaxCount != want.EventMaxCount ||
		got.AppliedMaxAge != want.AppliedMaxAge || got.AppliedMaxCount != want.AppliedMaxCount ||
		got.PartialMaxAge != want.PartialMaxAge {
		t.Errorf("Config{} defaults: max op %d, events %d, applied %v / %d, partials %v; config.DefaultCore: %d, %d, %v / %d, %v",
			got.MaxObjectSize, got.EventMaxCount, got.AppliedMaxAge, got.AppliedMaxCount, got.PartialMaxAge,
			want.MaxObjectSize, want.EventMaxCount, want.AppliedMaxAge, want.AppliedMaxCount, want.PartialMaxAge)
	}

	lim := config.DefaultCore().Limits
	s, err := NewServer(ServerConfig{TLS: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}, Store: &Store{}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.MaxOpBytes != lim.MaxOpBytes || c.MaxStreams != lim.MaxStreams || c.MaxConnections != lim.MaxConnections ||
		c.MaxFrameMemory != lim.MaxFrameMemory || c.MaxConnFrameMemory != lim.MaxConnFrameMemory {
		t.Errorf("ServerConfig{} defaults: max op %d, streams %d, connections %d, frame memory %d / %d; config.DefaultCore: %d, %d, %d, %d / %d",
			c.MaxOpBytes, c.MaxStreams, c.MaxConnections, c.MaxFrameMemory, c.MaxConnFrameMemory,
			lim.MaxOpBytes, lim.MaxStreams, lim.MaxConnections, lim.MaxFrameMemory, lim.MaxConnFrameMemory)
	}
}
