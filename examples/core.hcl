# edge-sync core configuration: the receiving site.

name     = "core"
listen   = ":7443"                        # UDP, QUIC
data_dir = "/var/lib/edge-sync-core"

tls {
  ca   = "/etc/edge-sync/pki/ca.pem"       # agents' certificates must be signed by it
  cert = "/etc/edge-sync/pki/core.pem"
  key  = "/etc/edge-sync/pki/core-key.pem"
}

default_quota = "50GiB"                   # per agent; 0 = unlimited

# When agent blocks are present, only these agents get in.
agent "ship-7" {
  quota = "100GiB"
}

store {
  dedup_retention = "720h"                # op IDs remembered for exactly-once
  event_retention = 1000000
  # backend = "jetstream": several cores on one NATS JetStream instead of
  # this machine's bbolt file; see core-jetstream.hcl and docs/jetstream.md.
}

limits {
  max_op_bytes = "1GiB"
  max_streams  = 64
  max_frame_memory                = "256MiB"  # frames in flight, all connections
  max_frame_memory_per_connection = "128MiB"
}

metrics {
  listen = "127.0.0.1:9465"
}
