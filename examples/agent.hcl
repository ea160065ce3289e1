# edge-sync agent configuration: an edge site that sends to one core.
# Every value not written here takes its documented default (see README).

name     = "ship-7"               # shown in logs; the core knows the agent by its certificate
data_dir = "/var/lib/edge-sync"   # outbox, delta bases, last link status, control socket

log {
  level  = "info"                 # trace, debug, info, warn, error
  format = "text"                 # or "json"
}

tls {                             # mutual TLS is always on: `edge-sync certs` makes these
  ca   = "/etc/edge-sync/pki/ca.pem"
  cert = "/etc/edge-sync/pki/agent-ship-7.pem"
  key  = "/etc/edge-sync/pki/agent-ship-7-key.pem"
}

endpoint "core" {
  address     = "core.example.net:7443"
  server_name = "core"            # name in the core's certificate
  # Several cores on one JetStream, the preferred first, instead of address:
  # the agent fails over between them and back (docs/design.md).
  # addresses = ["core-a.example.net:7443", "core-b.example.net:7443"]
  # fail_back = "30s"

  # A VSAT plan of 50 GiB a month, renewed on the 1st at midnight ship's
  # time. No budget block, no budget: every byte may go.
  budget {
    allowance       = "50GiB"     # counted as UDP bytes leaving the agent's socket
    period          = "month"     # hour, day, week, month, "7d", or a duration such as "30s"
    reset_day       = 1
    reset_at        = "00:00"
    zone            = "UTC"
    reserve_percent = 5           # the last 2.5 GiB: critical and schema ops only
    # Each priority stops when this share of the rest is spent.
    stop_percent    = { high = 100, normal = 90, analytics = 70, background = 50 }
    economy_percent = 40          # past 20 GiB every op goes in the cheapest encoding
    class "mobile" {              # the 4G fallback in port costs more: 5 GiB of it
      allowance = "5GiB"
    }
  }
}

outbox {
  max_ops      = 10000
  max_bytes    = "8GiB"
  max_op_bytes = "1GiB"
  default_ttl  = { analytics = "168h", background = "72h" }
}

monitor {
  probe_interval       = "5s"     # bandwidth probe period
  sample_interval      = "250ms"  # RTT/loss samples: what makes detection take seconds
  window               = "30s"
  min_samples          = 3
  hysteresis_percent   = 20
  probe_budget_percent = 2        # active probes use at most 2 % of capacity per minute
}

# A metered satellite modem: smaller chunks, less often.
profile "satellite" {
  chunk    = "32KiB"
  interval = "120s"
  # Summaries first, then the full data as backfill (docs/backfill.md);
  # normal ops here go in full at once.
  summary_only       = true
  summary_priorities = ["analytics", "background"]
}

control {
  socket = "/var/lib/edge-sync/agent.sock"   # mode 0600
}

metrics {
  listen = "127.0.0.1:9464"
}
