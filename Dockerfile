# The realtime-gateway image: `docker build -t realtime-gateway .` (see deploy/README.md).
#
# Two stages: the official Rust image builds the binary, and distroless "cc" runs it. The binary
# links glibc and libgcc_s (Rust's unwinder) and nothing else, which is exactly what cc carries
# (plus CA certificates and tzdata), without a shell or a package manager. Both stages are
# Debian 12 (bookworm), so the binary meets the glibc it was built against.

# rust-version in Cargo.toml is 1.94 (edition 2024; socketioxide needs 1.94): build with that.
# Images are named in full (docker.io/library/...) so that Podman and Buildah, which refuse short
# names by default, build this file as Docker does.
FROM docker.io/library/rust:1.94-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: with placeholder sources, this layer is rebuilt only
# when Cargo.toml, Cargo.lock or the build script change, not on every edit of the gateway's
# code. It is also where the build script fetches socket.io-client's browser bundle and the Admin
# UI from the npm registry (pinned versions, sha512-checked; kept in target/npm-cache for the
# build below), so this step needs the network, as fetching crates does.
COPY Cargo.toml Cargo.lock build.rs ./
COPY build ./build
RUN mkdir src namespaces \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src namespaces

# The gateway itself. build.rs and include_dir! embed namespaces/ into the binary, include_str!
# the example page and the database sink's table (migrations/). COPY keeps the files' old
# modification times, which cargo would take as older than the placeholder build, so touch them
# to have the crate rebuilt.
COPY src ./src
COPY namespaces ./namespaces
COPY client-example ./client-example
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && ./target/release/realtime-gateway check

# distroless has no version tags: cc-debian12 pins the Debian release, :nonroot the variant
# (uid 65532). For reproducible deployments, pin the digest you tested (`@sha256:...`).
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /src/target/release/realtime-gateway /usr/local/bin/realtime-gateway
# The shipped specs, also embedded in the binary. NAMESPACES_DIR points here, so mounting a
# folder of specs over it (`-v ./specs:/etc/realtime-gateway/namespaces:ro`) replaces them.
COPY namespaces /etc/realtime-gateway/namespaces

# HOST and PORT are the gateway's defaults, said here for `docker inspect`; JSON logs whether or
# not a terminal is attached (`docker run -t` would otherwise switch them to pretty).
ENV HOST=0.0.0.0 \
    PORT=3000 \
    LOG_FORMAT=json \
    NAMESPACES_DIR=/etc/realtime-gateway/namespaces

USER 65532:65532
EXPOSE 3000

# Liveness. The image has no curl: the binary probes its own /healthz over TCP (exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/realtime-gateway", "healthcheck", "--timeout", "2s"]

# Exec form: the gateway is PID 1 and receives `docker stop`'s SIGTERM itself, which makes it
# drain (readiness 503, sockets closed so clients reconnect elsewhere) within SHUTDOWN_TIMEOUT.
# Give the container a stop timeout above SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT (docker's is 10s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/realtime-gateway"]
CMD ["serve"]
