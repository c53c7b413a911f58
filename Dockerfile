# docworker container image: a release build on the Rust image, copied onto distroless (glibc,
# CA certificates, no shell, user 65532 "nonroot"). Build from the repository root:
#   docker build -t docworker:0.1.0 .
# Not built in CI (no Docker engine there); see docs/deploy.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p docworker \
    && cp target/release/docworker /docworker

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /docworker /usr/local/bin/docworker
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/docworker"]
CMD ["run"]
