# syntax=docker/dockerfile:1
#
# kando as a container image: one static musl binary, built by scripts/build-static.sh
# (the same script, and so the same commands, that scripts/test-static.sh tests).
#
#   docker build -t kando .                              # FROM scratch: /kando + CA bundle
#   docker build --target kando-busybox -t kando:busybox .   # plus busybox sh, for sh -c
#   docker buildx build --platform linux/amd64,linux/arm64 -t kando .
#   docker build --build-arg KANDO_GIT_COMMIT=$(git rev-parse HEAD) -t kando .
#
# Put kando into an existing database-tools image (what Kanister blueprints run):
#
#   COPY --from=kando /kando /usr/local/bin/kando
#
# See docs/SHIPPING.md.

ARG RUST_VERSION=1.95

# The builder runs on the build machine's platform and cross-compiles for TARGETARCH
# (amd64 → x86_64, arm64 → aarch64); the binary is static, so the final stages need no RUN.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETARCH
# Reported by `kando --version`; .git is not in the build context (.dockerignore).
ARG KANDO_GIT_COMMIT
ARG KANDO_BUILD_DATE
ARG SOURCE_DATE_EPOCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    bin=$(KANDO_GIT_COMMIT="${KANDO_GIT_COMMIT:-}" KANDO_BUILD_DATE="${KANDO_BUILD_DATE:-}" \
          scripts/build-static.sh "$arch" | tail -n 1); \
    cp "$bin" /kando

# Standalone use with a shell (busybox sh, gzip, tar…), kando on PATH:
#   docker run --rm -i kando:busybox sh -c '… | kando location push …'
FROM busybox:1.36-musl AS kando-busybox
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /kando /usr/local/bin/kando

# The default image: nothing but the binary and the CA bundle (S3 over HTTPS).
FROM scratch AS kando
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /kando /kando
ENTRYPOINT ["/kando"]
