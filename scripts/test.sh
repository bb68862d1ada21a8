#!/usr/bin/env bash
# Runs every test: installs what the S3 tests need (Ceph RGW, s3s-fs, moto; see
# scripts/s3/README.md), then the whole suite with cargo-nextest. Needs no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/s3/install.sh all
# nextest runs each test in its own process, so S3 suites start their own servers.
cargo nextest run --workspace --all-targets --no-fail-fast "$@"
