# syntax=docker/dockerfile:1
# metrics-server-rs image: a static (musl) binary on distroless/static, running as non-root.
# Expected size: about 9 MB (≈2 MB base + ≈7 MB stripped binary). Reproducible: pinned toolchain
# image, --locked dependencies, no timestamps or build paths in the binary.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Cargo needs every declared target present to read the manifest; only the binary is built.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
ENV SOURCE_DATE_EPOCH=0 \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=true \
    RUSTFLAGS="--remap-path-prefix=/src=. --remap-path-prefix=/usr/local/cargo=cargo"
RUN cargo build --locked --release --target x86_64-unknown-linux-musl --bin metrics-server \
 && cp target/x86_64-unknown-linux-musl/release/metrics-server /metrics-server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /metrics-server /metrics-server
# 65534 (nobody) as upstream's image; the manifests may pin another non-root UID.
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
