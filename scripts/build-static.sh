#!/usr/bin/env bash
# Builds a fully static kando (musl libc, no dynamic loader, no shared libraries), one
# command per target:
#
#     scripts/build-static.sh x86_64     # target/x86_64-unknown-linux-musl/release/kando
#     scripts/build-static.sh aarch64    # target/aarch64-unknown-linux-musl/release/kando
#
# Installs what it needs, idempotently and without stdin: the rustup target, and from apt
# musl-tools for the machine's own architecture, Debian's cross gcc/binutils for the other
# one (tested: x86_64 host → aarch64). Honors CARGO_TARGET_DIR.
# The last line of stdout is the path of the built binary (everything else goes to stderr).
#
# `kando --version` reports KANDO_GIT_COMMIT and KANDO_BUILD_DATE; both default to the
# checkout's HEAD and the current UTC time (SOURCE_DATE_EPOCH, when set, fixes the date).
# The Dockerfile runs this very script, so the image is built by the commands tested here.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:-$(uname -m)}
case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) echo "usage: $0 [x86_64|aarch64]" >&2; exit 2 ;;
esac
target="$arch-unknown-linux-musl"

log() { echo "build-static: $*" >&2; }

# shellcheck source=scripts/apt-ensure.sh
. scripts/apt-ensure.sh

# The rustup target for the toolchain that builds this directory.
if ! rustup target list --installed | grep -qx "$target"; then
  log "rustup target add $target"
  rustup target add "$target" >&2
fi

host=$(uname -m)
if [ "$arch" = "$host" ]; then
  # Native: the C parts (zstd, blake3, aws-lc) are compiled by musl-gcc against musl's
  # headers; Rust links its own musl libc.a and crt objects.
  apt_ensure musl-tools
else
  # Cross (x86_64 → aarch64 is the tested one): Debian's cross gcc and binutils compile
  # the C parts and drive the link; Rust supplies musl's libc.a and crt objects
  # (self-contained linking), so no musl cross toolchain is needed.
  debarch=$([ "$arch" = aarch64 ] && echo arm64 || echo amd64)
  gnu="$arch-linux-gnu"
  apt_ensure "gcc-${gnu//_/-}" "libc6-dev-$debarch-cross"
  t=${target//-/_}
  T=$(echo "$t" | tr a-z A-Z)
  export "CC_$t=$gnu-gcc" "AR_$t=$gnu-ar" "CARGO_TARGET_${T}_LINKER=$gnu-gcc"
fi

if [ -z "${KANDO_GIT_COMMIT:-}" ]; then
  KANDO_GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
fi
if [ -z "${KANDO_BUILD_DATE:-}" ]; then
  KANDO_BUILD_DATE=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
fi
export KANDO_GIT_COMMIT KANDO_BUILD_DATE

# jemalloc (the binary's allocator) fixes its page size when it is built. arm64 kernels run
# 4, 16 or 64 KiB pages, and a jemalloc built for smaller pages than the kernel's aborts at
# start, so aarch64 builds take 64 KiB, which also runs on the smaller ones.
if [ "$arch" = aarch64 ]; then
  export JEMALLOC_SYS_WITH_LG_PAGE=16
fi

log "cargo build --release --locked --target $target (commit $KANDO_GIT_COMMIT, date $KANDO_BUILD_DATE)"
cargo build --release --locked --target "$target" >&2

bin="${CARGO_TARGET_DIR:-target}/$target/release/kando"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
[ -x "$bin" ] || { log "no binary at $bin"; exit 1; }
log "built $bin ($(stat -c %s "$bin") bytes)"
echo "$bin"
