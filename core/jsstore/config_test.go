package jsstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestOpenStoreFromConfig: a core config's store block reaches a NATS
// server that wants mutual TLS and a user and password; a wrong password
// or a missing client certificate is refused with the server's reason.
func TestOpenStoreFromConfig(t *testing.T) {
	p := testutil.NewPKI(t, "core-store")
	srv := natstest.Run(t, func(o *server.Options) {
		tc := p.ServerTLS(t) // requires a client certificate from the CA
		tc.MinVersion = tls.VersionTLS12
		o.TLSConfig, o.TLSVerify, o.TLSTimeout = tc, true, 5
		o.Username, o.Password = "core", "s3cret"
	})
	cfg := config.DefaultCore()
	cfg.TLS = config.TLS{CA: "a", Cert: "b", Key: "c"}
	cfg.Store.Backend = config.BackendJetStream
	j := &cfg.Store.JetStream
	j.URLs = []string{fmt.Sprintf("tls://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)}
	j.Prefix = fmt.Sprintf("t%d", prefixes.Add(1))
	j.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	j.User, j.Password = "core", "s3cret"

	s, err := OpenStore(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	defer s.Close()
	d := storetest.Payload(1, 100)
	if _, err := s.Apply("site", storetest.Header(storetest.OpID(1), edgesync.StateOp, "k", d), bytes.NewReader(d)); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenStore(context.Background(), cfg, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenStore read-only: %v", err)
	}
	defer ro.Close()
	if v, _, err := ro.Current("site", "k"); err != nil || v.Size != 100 {
		t.Fatalf("read-only store reads %+v, %v", v, err)
	}

	bad := cfg
	bad.Store.JetStream.Password = "wrong"
	if _, err := OpenStore(context.Background(), bad, Options{}); err == nil || !strings.Contains(err.Error(), "uthorization") {
		t.Errorf("wrong password: %v", err)
	}
	bad = cfg
	bad.Store.JetStream.TLS = config.TLS{CA: p.CAFile}
	if _, err := OpenStore(context.Background(), bad, Options{}); err == nil {
		t.Error("no client certificate: connected")
	}
	bad = cfg
	bad.Store.Backend = config.BackendBolt
	if _, err := OpenStore(context.Background(), bad, Options{}); err == nil {
		t.Error("a bbolt store block opened as JetStream")
	}
}

// The store's zero-value defaults are the config file's (config.DefaultCore),
// which a library user without a file gets too.
func TestZeroConfigTakesTheFilesDefaults(t *testing.T) {
	want := config.DefaultCore().Store.JetStream
	got := Config{}.withDefaults()
	if got.Prefix != want.Prefix || got.Replicas != want.Replicas || got.History != want.History ||
		got.DuplicateWindow != want.DuplicateWindow || got.Timeout != want.Timeout {
		t.Errorf("Config{} defaults: prefix %q, replicas %d, history %d, duplicate window %v, timeout %v; config.DefaultCore: %q, %d, %d, %v, %v",
			got.Prefix, got.Replicas, got.History, got.DuplicateWindow, got.Timeout,
			want.Prefix, want.Replicas, want.History, want.DuplicateWindow, want.Timeout)
	}
}
