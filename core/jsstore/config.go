package jsstore

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
)

// Options are what OpenStore takes besides the config file.
type Options struct {
	// Logger receives the background work's problems; nil discards.
	Logger hclog.Logger
	// ReadOnly opens the store for reading only (`edge-sync core ls`):
	// nothing is created, written or run in the background.
	ReadOnly bool
}

// OpenStore opens the JetStream store of a core's config (store.backend
// "jetstream"): its servers, TLS and credentials, names and replication,
// and the quotas, limits and retention every Backend takes
// (core.StoreConfig). The one place config.Core's store fields become a
// Config.
func OpenStore(ctx context.Context, cfg config.Core, opts Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open jetstream store: %w", err)
	}
	if cfg.Store.Backend != config.BackendJetStream {
		return nil, fmt.Errorf("open jetstream store: %w: store.backend is %q", core.ErrInvalid, cfg.Store.Backend)
	}
	j := cfg.Store.JetStream
	natsOpts, err := connectOptions(j)
	if err != nil {
		return nil, fmt.Errorf("open jetstream store: %w", err)
	}
	return Open(ctx, Config{
		Config:          core.StoreConfig(cfg),
		URLs:            j.URLs,
		Options:         natsOpts,
		Prefix:          j.Prefix,
		Replicas:        j.Replicas,
		History:         j.History,
		DuplicateWindow: j.DuplicateWindow,
		EventMaxAge:     j.EventMaxAge,
		Timeout:         j.Timeout,
		ReadOnly:        opts.ReadOnly,
		Name:            "edge-sync core " + cfg.Name,
		Logger:          opts.Logger,
	})
}

// connectOptions are the NATS connection's TLS and credentials.
func connectOptions(j config.JetStream) ([]nats.Option, error) {
	var opts []nats.Option
	if j.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(j.TLS.CA))
	}
	if j.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(j.TLS.Cert, j.TLS.Key))
	}
	switch {
	case j.Credentials != "":
		opts = append(opts, nats.UserCredentials(j.Credentials))
	case j.NKey != "":
		o, err := nats.NkeyOptionFromSeed(j.NKey)
		if err != nil {
			return nil, fmt.Errorf("store.nkey: %w", err)
		}
		opts = append(opts, o)
	case j.User != "":
		opts = append(opts, nats.UserInfo(j.User, j.Password))
	case j.Token != "":
		opts = append(opts, nats.Token(j.Token))
	}
	return opts, nil
}
