# syntax=docker/dockerfile:1
# Static (musl) build on the official Rust image, shipped on distroless/static as a non-root user.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY src ./src
COPY benches ./benches
ENV SOURCE_DATE_EPOCH=0
RUN cargo build --locked --release --target x86_64-unknown-linux-musl --bin metrics-server \
 && cp target/x86_64-unknown-linux-musl/release/metrics-server /metrics-server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /metrics-server /metrics-server
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
