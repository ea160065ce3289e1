# edge-sync core on NATS JetStream: run this on as many machines as you
# like; every core stores into the same JetStream (docs/jetstream.md).

name     = "core-1"                        # differs per core: it names the core in logs
listen   = ":7443"                        # UDP, QUIC
data_dir = "/var/lib/edge-sync-core"      # the admin socket lives here

tls {
  ca   = "/etc/edge-sync/pki/ca.pem"
  cert = "/etc/edge-sync/pki/core.pem"
  key  = "/etc/edge-sync/pki/core-key.pem"
}

default_quota = "50GiB"

store {
  backend  = "jetstream"
  urls     = ["nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
  replicas = 3                            # a write is acknowledged once 2 of 3 have it
  prefix   = "edgesync"                   # buckets edgesync_state, ...; subjects edgesync.ev.>, ...
  history  = 5                            # versions kept per state key

  dedup_retention = "720h"                # the applied bucket's max age
  event_retention = 1000000               # events kept per agent
  # event_max_age = "2160h"

  # Authenticate with one of: credentials, nkey, user + password, token.
  credentials = "/etc/edge-sync/nats/core.creds"
  tls {
    ca = "/etc/edge-sync/nats/ca.pem"     # the NATS servers' CA; cert and key if they ask for one
  }
}

metrics {
  listen = "127.0.0.1:9465"
}
