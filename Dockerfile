# FLick's container images: one build of every binary, one small image per service.
#
#   docker build --target persister -t flick/persister .
#
# The gateway and flick images carry the web dashboard, built in a Node stage.
# Targets: collector, persister, alerter, gateway, and flick (the all-in-one `flick all`, also
# what a build without --target gives). compose.yaml builds the four services from here.
#
# The builder compiles the dependencies from the manifests alone first (the `skeleton`), so a
# change to FLick's own code reuses that layer and recompiles only FLick's crates; the
# dependencies are rebuilt only when a Cargo.toml or Cargo.lock changes. No BuildKit-only syntax,
# so the classic builder (docker-compose 1.x) builds it too.

ARG RUST_VERSION=1

# --- planner: reduce the source tree to what decides the dependency build ---------------------
FROM rust:${RUST_VERSION}-bookworm AS planner
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# Every manifest and the lock file, and an empty stand-in for each target cargo checks exists
# (library, binary, build script, benchmark). The stand-ins' content never changes, so the
# builder's COPY below hits the cache unless a manifest or the lock file changed.
RUN set -eu; \
    mkdir -p /skeleton; \
    cp Cargo.lock /skeleton/; \
    find . -path ./target -prune -o -name node_modules -prune -o -name Cargo.toml -print | \
    while read -r manifest; do \
        dir=$(dirname "$manifest"); \
        mkdir -p "/skeleton/$dir"; \
        cp "$manifest" "/skeleton/$dir/"; \
        for file in "$dir"/src/lib.rs "$dir"/src/main.rs "$dir"/src/bin/*.rs "$dir"/build.rs "$dir"/benches/*.rs; do \
            [ -f "$file" ] || continue; \
            mkdir -p "/skeleton/$(dirname "$file")"; \
            case "$file" in \
                */src/lib.rs) : > "/skeleton/$file" ;; \
                *) echo 'fn main() {}' > "/skeleton/$file" ;; \
            esac; \
        done; \
    done

# --- builder: dependencies first, then FLick itself --------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY --from=planner /skeleton/ ./
RUN cargo build --release --locked
COPY . .
# COPY keeps the files' modification times, which can be older than the stand-ins built above:
# touching FLick's sources makes cargo rebuild its crates instead of keeping the empty ones.
# The release profile keeps line tables for readable backtraces; compressing them makes each
# binary about a third of the size (std decompresses them when it prints a backtrace).
RUN find shared services -name '*.rs' -not -path '*/node_modules/*' -exec touch {} + \
    && cargo build --release --locked \
    && mkdir -p /out \
    && for binary in flick-collector flick-persister flick-alerter flick-gateway flick; do \
           objcopy --compress-debug-sections=zlib "target/release/$binary" "/out/$binary"; \
       done \
    && mkdir -p /out/downloads \
    && cp /out/flick-collector "/out/downloads/flick-collector-linux-$(uname -m)"

# --- web: the dashboard, built once for the gateway and the all-in-one images ------------------
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY services/gateway/web/package.json services/gateway/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/gateway/web/ ./
RUN npm run build

# --- runtime: what every service image shares --------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: the alerter's webhooks (and TLS to NATS or PostgreSQL, when configured) check
# server certificates against the system's roots. Nothing else: the binaries probe their own
# health (`<binary> healthcheck`), so the images need no curl or shell tools. Unpinned on
# purpose: the newest root certificates of bookworm are the ones to have.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 flick \
    && useradd --system --uid 10001 --gid flick --home-dir /var/lib/flick --no-create-home \
               --shell /usr/sbin/nologin flick \
    && install -d -o flick -g flick -m 0750 /var/lib/flick \
    && install -d -o flick -g flick -m 0755 /flick
# A fixed uid, so volume permissions and host policies can name it.
USER 10001:10001
WORKDIR /var/lib/flick
LABEL org.opencontainers.image.source="https://github.com/flick-monitoring/flick" \
      org.opencontainers.image.licenses="MIT"

# The migrations are embedded in the binaries (sqlx::migrate!), so no image needs migrations/.

FROM runtime AS collector
COPY --from=builder /out/flick-collector /usr/local/bin/
LABEL org.opencontainers.image.title="flick-collector"
ENTRYPOINT ["flick-collector"]

FROM runtime AS persister
COPY --from=builder /out/flick-persister /usr/local/bin/
LABEL org.opencontainers.image.title="flick-persister"
EXPOSE 9101
ENTRYPOINT ["flick-persister"]

FROM runtime AS alerter
COPY --from=builder /out/flick-alerter /usr/local/bin/
LABEL org.opencontainers.image.title="flick-alerter"
EXPOSE 9102
ENTRYPOINT ["flick-alerter"]

FROM runtime AS gateway
COPY --from=builder /out/flick-gateway /usr/local/bin/
# Where the gateway looks for the dashboard when gateway.web_dir is unset.
COPY --from=web /web/dist /usr/share/flick/web
# The collector build it serves at /downloads for `install.sh` (gateway.downloads_dir's default).
COPY --from=builder /out/downloads /usr/share/flick/downloads
LABEL org.opencontainers.image.title="flick-gateway"
EXPOSE 8080 9103
ENTRYPOINT ["flick-gateway"]

# Last, so that a plain `docker build .` gives the all-in-one image. `flick all` keeps the
# development secrets it generates in its working directory, /var/lib/flick. compose.yaml's
# `init` service runs `flick init` from this image into the secrets volume mounted at /flick
# (created above, owned by flick, so that a new volume is too).
FROM runtime AS flick
COPY --from=builder /out/flick /usr/local/bin/
COPY --from=web /web/dist /usr/share/flick/web
LABEL org.opencontainers.image.title="flick"
EXPOSE 8080
ENTRYPOINT ["flick"]
CMD ["all"]
