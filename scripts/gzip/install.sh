#!/usr/bin/env bash
# Installs what the gzip-dedup tests (tests/gzip.rs, issue 17) need beyond the base image:
# pigz, one of the gzip producers whose streams must round-trip and deduplicate, and, only
# where no PostgreSQL server is installed at all, Debian's `postgresql` (the end-to-end
# test restores `pg_dumpall | gzip` through kando into a fresh cluster). GNU gzip and
# python3 come with the image; the Go fixtures are committed (tests/fixtures/gzip/README.md),
# so Go is not installed here.
#
#   scripts/gzip/install.sh
#
# Idempotent (nothing happens when both are there); apt-get, non-interactive, no stdin, as
# root or through `sudo -n`.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'gzip/install.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/apt-ensure.sh
. scripts/apt-ensure.sh

if command -v pigz >/dev/null; then
  log "pigz already installed ($(pigz --version 2>&1 | head -n1))"
else
  apt_ensure pigz
  command -v pigz >/dev/null || { log "error: pigz still not on PATH after installing it"; exit 1; }
  log "pigz installed ($(pigz --version 2>&1 | head -n1))"
fi

if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  log "PostgreSQL server already installed ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' '))"
else
  apt_ensure postgresql
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    { log "error: no /usr/lib/postgresql/*/bin/initdb after installing postgresql"; exit 1; }
  log "PostgreSQL installed"
fi
