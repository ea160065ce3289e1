# edge-sync in a container: one static binary, run as a non-root user.
#
#   docker build -t edge-sync .
#   docker run -v /etc/edge-sync:/etc/edge-sync:ro -v edge-sync-core:/var/lib/edge-sync-core \
#     -p 7443:7443/udp edge-sync core --config /etc/edge-sync/core.hcl
#   docker run -v /etc/edge-sync:/etc/edge-sync:ro -v edge-sync:/var/lib/edge-sync \
#     edge-sync agent --config /etc/edge-sync/agent.hcl
#
# The keys in /etc/edge-sync must be readable by uid 10001 (chown or chmod
# them, or mount a copy). The config's data_dir should be the volume's path.
# The go build line below is the one cmd/edge-sync's TestStaticBuild runs.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
# CGO off: a static binary that runs on any base, scratch included.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/edge-sync/edge-sync/internal/cli.Version=${VERSION}" \
      -o /out/edge-sync ./cmd/edge-sync \
 && mkdir -p /out/var/lib/edge-sync /out/var/lib/edge-sync-core

# Nothing but the binary: edge-sync needs no libc, no shell and no system
# CA bundle (its TLS trusts only the CA of its config).
FROM scratch
COPY --from=build /out/edge-sync /usr/local/bin/edge-sync
COPY --from=build --chown=10001:10001 /out/var/lib /var/lib
USER 10001:10001
VOLUME ["/var/lib/edge-sync", "/var/lib/edge-sync-core"]
EXPOSE 7443/udp
# One image runs the agent or the core, so it has no HEALTHCHECK of its
# own; an agent's container gets one with
#   --health-cmd '/usr/local/bin/edge-sync ctl health --socket /var/lib/edge-sync/agent.sock'
ENTRYPOINT ["/usr/local/bin/edge-sync"]
CMD ["--help"]
