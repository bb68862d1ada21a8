#!/usr/bin/env bash
# Install the S3-compatible servers the test suite and benchmarks run on 127.0.0.1.
#
#   scripts/s3/install.sh [rgw|s3s-fs|moto|all]     (default: all)
#
# Idempotent: each installer returns at once when its server is already there.
# Needs no stdin. rgw needs root (apt-get). See scripts/s3/README.md.
set -euo pipefail

S3S_FS_VERSION=0.14.1 # 0.17 needs a newer rustc than the project's toolchain
RGW_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
# Another apt/dpkg (a parallel job, unattended-upgrades) may hold the dpkg lock:
# wait for it instead of failing at once.
APT_OPTS=(-o DPkg::Lock::Timeout=600)

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when every RGW package is installed (dpkg state "install ok installed").
rgw_installed() {
  local p
  for p in "${RGW_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# apt-get update costs tens of seconds: only run it when the package lists
# do not know radosgw yet (fresh container with empty /var/lib/apt/lists).
apt_lists_know_rgw() {
  apt-cache policy radosgw 2>/dev/null | grep -q 'Candidate: [0-9]'
}

install_rgw() {
  if rgw_installed; then log "rgw: already installed"; return 0; fi
  command -v apt-get >/dev/null || die "rgw: apt-get not found (Debian/Ubuntu only)"
  [ "$(id -u)" = 0 ] || die "rgw: apt-get install needs root"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt_lists_know_rgw; then
    log "rgw: apt-get update"
    apt-get "${APT_OPTS[@]}" update -q </dev/null >&2 || die "rgw: apt-get update failed"
  fi
  log "rgw: apt-get install ${RGW_PACKAGES[*]}"
  apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${RGW_PACKAGES[@]}" </dev/null >&2 \
    || die "rgw: apt-get install failed"
  rgw_installed || die "rgw: packages still not installed after apt-get"
  log "rgw: installed"
}

install_s3s_fs() {
  if command -v s3s-fs >/dev/null; then log "s3s-fs: already on PATH ($(command -v s3s-fs))"; return 0; fi
  command -v cargo >/dev/null || die "s3s-fs: cargo not found on PATH"
  log "s3s-fs: cargo install s3s-fs@$S3S_FS_VERSION (takes ~90 s on 2 cores)"
  cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked </dev/null >&2 \
    || die "s3s-fs: cargo install failed"
  # cargo installs into ~/.cargo/bin (or $CARGO_HOME/bin), which may not be on PATH.
  command -v s3s-fs >/dev/null \
    || log "s3s-fs: installed, but not on PATH: add ${CARGO_HOME:-$HOME/.cargo}/bin to PATH"
  log "s3s-fs: installed"
}

# A pyenv shim can exist for a Python that lacks moto, so run it rather than `command -v`.
moto_works() { moto_server --help >/dev/null 2>&1; }

install_moto() {
  if moto_works; then log "moto: already works"; return 0; fi
  command -v python3 >/dev/null || die "moto: python3 not found"
  log "moto: pip install 'moto[server]'"
  python3 -m pip install -q 'moto[server]' </dev/null >&2 || die "moto: pip install failed"
  # pyenv needs its shims regenerated for the new console script.
  if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi
  moto_works || die "moto: installed but moto_server does not run (is the pip's bin dir on PATH?)"
  log "moto: installed"
}

main() {
  local what=${1:-all}
  case $what in
    rgw) install_rgw ;;
    s3s-fs) install_s3s_fs ;;
    moto) install_moto ;;
    all) install_rgw; install_s3s_fs; install_moto ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "unknown server '$what' (expected rgw, s3s-fs, moto or all)" ;;
  esac
}

main "$@"
