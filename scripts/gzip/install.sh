#!/usr/bin/env bash
# Installs what the gzip-dedup tests (tests/gzip.rs, issue 17) need beyond the base image:
# pigz, one of the gzip producers whose streams must round-trip and deduplicate. GNU gzip,
# python3 and PostgreSQL come with the image; the Go fixtures are committed
# (tests/fixtures/gzip/README.md), so Go is not installed here.
#
#   scripts/gzip/install.sh
#
# Idempotent (nothing happens when pigz is there); apt-get, non-interactive, no stdin,
# as root or through `sudo -n`.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'gzip/install.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/apt-ensure.sh
. scripts/apt-ensure.sh

if command -v pigz >/dev/null; then
  log "pigz already installed ($(pigz --version 2>&1 | head -n1))"
  exit 0
fi
apt_ensure pigz
command -v pigz >/dev/null || { log "error: pigz still not on PATH after installing it"; exit 1; }
log "pigz installed ($(pigz --version 2>&1 | head -n1))"
