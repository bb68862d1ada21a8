#!/usr/bin/env bash
# Runs every test: installs what the S3 tests need (Ceph RGW, s3s-fs, moto; see
# scripts/s3/README.md) and the GCS and Azure emulators (fake-gcs-server, Azurite; see
# scripts/emulators/README.md), runs the whole Rust suite with cargo-nextest (unit, property,
# integration against the local directory and real S3 servers, fault injection, example
# blueprints), then builds the static x86_64 and aarch64 binaries and checks them
# (scripts/test-static.sh; skip with KANDO_SKIP_STATIC=1). Needs no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/s3/install.sh all
scripts/emulators/install.sh all
scripts/gzip/install.sh
# nextest runs each test in its own process; the S3, GCS and Azure suites start their own
# servers, one suite at a time (.config/nextest.toml).
cargo nextest run --workspace --all-targets --no-fail-fast "$@"
if [ -z "${KANDO_SKIP_STATIC:-}" ]; then
  scripts/test-static.sh
fi
