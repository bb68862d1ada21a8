#!/usr/bin/env bash
# Builds the static binaries with scripts/build-static.sh (x86_64 and aarch64) and checks
# them: statically linked (no program interpreter, no NEEDED libraries), `--version` carries
# the build's commit, and a push/pull round trip on a local repository restores the bytes;
# the aarch64 binary runs under qemu-user. Prints the build times and binary sizes.
# Installs what it needs (file, qemu-user) without stdin; exits non-zero on any failure.
#
#     scripts/test-static.sh              # both targets
#     scripts/test-static.sh x86_64       # one of them
set -euo pipefail
cd "$(dirname "$0")/.."

archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64)

log() { echo "test-static: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# shellcheck source=scripts/apt-ensure.sh
. scripts/apt-ensure.sh

apt_ensure file binutils
for a in "${archs[@]}"; do
  [ "$a" = "$(uname -m)" ] || apt_ensure qemu-user
done

WORK=$(mktemp -d /tmp/kando-static.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ~24 MB of dump-like text and random blocks: several chunks, packs and both codecs.
python3 - "$WORK/data" <<'PY'
import hashlib, os, sys
with open(sys.argv[1], "wb") as f:
    for i in range(8):
        rows = "".join(f"{n}\t{hashlib.md5(str(n).encode()).hexdigest()}\t{{\"u\": {n % 977}}}\n"
                       for n in range(i * 40000, (i + 1) * 40000))
        f.write(rows.encode())
        f.write(hashlib.shake_256(str(i).encode()).digest(1 << 20))
PY

# The binary's ELF program headers and dynamic section: no INTERP, no NEEDED.
check_static() {
  local bin=$1 machine=$2
  file -L "$bin" >&2
  readelf -h "$bin" | grep -q "Machine: *$machine" || fail "$bin is not a $machine binary"
  if readelf -lW "$bin" | grep -q INTERP; then fail "$bin has a program interpreter"; fi
  if readelf -dW "$bin" | grep -q NEEDED; then fail "$bin needs shared libraries"; fi
  if file -L "$bin" | grep -q "dynamically linked, interpreter"; then fail "$bin is dynamic"; fi
}

# A push twice (the second deduplicates), a pull by path and by snapshot JSON, a delete.
roundtrip() {
  local label=$1; shift
  local run=("$@")
  local repo="$WORK/repo-$label"
  local P="{\"Location\":{\"type\":\"local\",\"path\":\"$repo\"}}"
  "${run[@]}" location push --profile "$P" --path x - < "$WORK/data" > "$WORK/push1" ||
    fail "$label: push"
  "${run[@]}" location push --profile "$P" --path x --output-name kopiaOutput - \
    < "$WORK/data" > "$WORK/push2" || fail "$label: second push"
  grep -q '^###Phase-output###: {"key":"kopiaOutput","value":"{\\"id\\":' "$WORK/push2" ||
    fail "$label: no snapshot output: $(cat "$WORK/push2")"
  "${run[@]}" location pull --profile "$P" --path x - | cmp - "$WORK/data" ||
    fail "$label: pull by path differs"
  local snap
  snap=$(sed -n 's/^###Phase-output###: {"key":"kandoOutput","value":"\(.*\)"}$/\1/p' "$WORK/push1" |
    sed 's/\\"/"/g')
  [ -n "$snap" ] || fail "$label: no kandoOutput in $(cat "$WORK/push1")"
  "${run[@]}" location pull --profile "$P" --path x --kopia-snapshot "$snap" - |
    cmp - "$WORK/data" || fail "$label: pull by snapshot differs"
  "${run[@]}" location delete --profile "$P" --path x || fail "$label: delete"
  local rc=0
  "${run[@]}" location pull --profile "$P" --path x - > /dev/null 2>&1 || rc=$?
  [ "$rc" = 69 ] || fail "$label: pull after delete exited $rc, expected 69"
  log "$label: round trip OK ($(stat -c %s "$WORK/data") bytes, repository $(du -sb "$repo" | cut -f1) bytes)"
}

summary=()
for a in "${archs[@]}"; do
  start=$(date +%s)
  bin=$(scripts/build-static.sh "$a" | tail -n 1)
  secs=$(( $(date +%s) - start ))
  [ -x "$bin" ] || fail "build-static.sh $a printed no binary"
  case "$a" in
    x86_64) machine="Advanced Micro Devices X86-64" ;;
    aarch64) machine="AArch64" ;;
  esac
  check_static "$bin" "$machine"
  if [ "$a" = "$(uname -m)" ]; then
    run=("$bin")
    ldd_out=$(ldd "$bin" 2>&1 || true)
    log "ldd: $ldd_out"
    grep -Eq "not a dynamic executable|statically linked" <<<"$ldd_out" ||
      fail "ldd thinks $bin is dynamic"
  else
    run=("qemu-$a" "$bin")
  fi
  version=$("${run[@]}" --version) || fail "$a: --version"
  log "$a: $version"
  commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  [[ "$version" == *"\"gitCommit\": \"$commit\""* ]] || fail "$a: --version lacks commit $commit"
  [[ "$version" != *'"buildDate": "unknown"'* ]] || fail "$a: --version lacks the build date"
  roundtrip "$a" "${run[@]}"
  summary+=("$a: built in ${secs}s, $(stat -c %s "$bin") bytes, $bin")
done
log "all checks passed"
printf '%s\n' "${summary[@]}"
