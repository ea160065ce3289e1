package core

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/config"
)

// This file builds a core from its config file: the one place where
// config.Core's fields become the store's Config and the server's
// ServerConfig (the convention of config/doc.go, as agent.New does for the
// agent). NewServer and Open stay for tests that build the parts by hand.

// Options are what a core takes besides its config file: what only the
// CLI or tests set.
type Options struct {
	// TLS must require and verify client certificates (see
	// pki.ServerTLSConfig, which reads the files of config.Core.TLS).
	TLS *tls.Config
	// Logger is the root logger; nil discards.
	Logger hclog.Logger
	// DisableLane refuses agents' offer of the data lane.
	DisableLane bool
}

// OpenStore creates the store's directory (mode 0700) if needed and opens
// the bbolt store of cfg (cfg.StorePath()) with its quotas, limits and
// retention. A store of backend "jetstream" is core/jsstore's OpenStore.
func OpenStore(cfg config.Core) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open core store: %w", err)
	}
	path := cfg.StorePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open core store: %w", err)
	}
	return Open(path, StoreConfig(cfg))
}

// StoreConfig returns the quotas, limits and retention of cfg's store, as
// every Backend takes them.
func StoreConfig(cfg config.Core) Config {
	return Config{
		Quota: cfg.DefaultQuota,
		// An agent not let in has no quota to speak of; the server refuses
		// it at admission (Allow), before the store is asked.
		AgentQuota:      func(agent string) int64 { q, _ := cfg.Quota(agent); return q },
		MaxObjectSize:   cfg.Limits.MaxOpBytes,
		EventMaxCount:   int64(cfg.Store.EventRetention),
		AppliedMaxAge:   cfg.Store.DedupRetention,
		AppliedMaxCount: int64(cfg.Store.DedupMaxEntries),
		PartialMaxAge:   cfg.Store.PartialMaxAge,
	}
}

// New returns a server of cfg that stores into store (see OpenStore),
// ready to Serve. Agents not listed in cfg.Agents are refused when the
// list is not empty. The server does not close the store.
func New(cfg config.Core, store Backend, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new core server: %w", err)
	}
	return NewServer(ServerConfig{
		Name:               cfg.Name,
		TLS:                opts.TLS,
		Store:              store,
		Allow:              cfg.Quota,
		MaxOpBytes:         cfg.Limits.MaxOpBytes,
		MaxStreams:         cfg.Limits.MaxStreams,
		MaxConnections:     cfg.Limits.MaxConnections,
		MaxFrameMemory:     cfg.Limits.MaxFrameMemory,
		MaxConnFrameMemory: cfg.Limits.MaxConnFrameMemory,
		DisableLane:        opts.DisableLane,
		Logger:             opts.Logger,
	})
}
