# syntax=docker/dockerfile:1
#
# warden's container image: docs/DEPLOY.md#container.
#
#     docker build -t warden --build-arg WARDEN_COMMIT="$(git log -1 --format='%h %cs')" .
#     docker run --rm warden keygen --principal agent
#     docker run -d -p 8080:8080 -e WARDEN_API_KEY_SHA256=<sha256 from keygen> --read-only warden
#
# The runtime stage gets its files from contrib/docker/layout.sh, which the container test in
# tests/cli.rs runs too.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: warden and the bundled plugins ---------------------------------------------------
FROM ${RUST_IMAGE} AS build
# rust-toolchain.toml asks for "stable": use the image's own toolchain (RUST_VERSION is set by
# the rust image) rather than downloading another, with the plugins' target.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION}
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# No .git in the build context: `warden --version` shows this instead of a commit.
ARG WARDEN_COMMIT=
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p warden \
    && contrib/docker/layout.sh /out \
    && /out/usr/local/bin/warden --version

# --- runtime ---------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 warden \
    && useradd --system --uid 10001 --gid warden --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin warden
COPY --from=build /out/ /
# Everything above belongs to root and is read-only to warden; it writes only these two.
RUN chown warden:warden /var/cache/warden /var/log/warden
VOLUME ["/var/cache/warden", "/var/log/warden"]
USER 10001:10001
# `warden check`, `warden call TOOL JSON` and `warden audit tail` find the manifest here.
WORKDIR /etc/warden
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["warden-healthcheck", "8080"]
ENTRYPOINT ["warden"]
CMD ["serve", "--http", "0.0.0.0:8080", "--manifest", "/etc/warden/warden.toml"]
