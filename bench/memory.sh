#!/usr/bin/env bash
# Peak memory of kando push and pull on incompressible, never-seen data (the worst case:
# every byte is new and stored raw), for several stream lengths, several runs each.
#
#   bench/memory.sh [--sizes "1 8"] [--runs 3] [--work DIR] [--pull-only] [-- extra push flags]
#
# --pull-only measures pulls alone, from repositories the first run pushes and keeps (a
# pull right after an 8 GiB push competes with the kernel writing that push back to disk).
#
# The stream is AES-CTR keystream from openssl, piped into `kando location push -` as a
# dump would be; the pull restores it to /dev/null. Peak RSS is GNU time's "maximum
# resident set size". The kando binary is $KANDO_BIN (default target/release/kando).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KANDO_BIN=${KANDO_BIN:-$REPO_ROOT/target/release/kando}
SIZES="1 8"
RUNS=3
WORK=${KANDO_BENCH_DIR:-/tmp/kando-bench}/memory
EXTRA=()
PULL_ONLY=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --sizes) SIZES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --pull-only) PULL_ONLY=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -x $KANDO_BIN ]] || { echo "build kando first (cargo build --release) or set KANDO_BIN" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is needed for the data stream" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }

stream() { # GiB (openssl dies of SIGPIPE when head is done: not a failure)
    (set +o pipefail
     openssl enc -aes-128-ctr -pbkdf2 -nosalt -pass pass:kando-memory </dev/zero 2>/dev/null |
         head -c $(($1 << 30)))
}

echo "| stream | run | push peak RSS MB | push s | pull peak RSS MB | pull s |"
echo "|---|---:|---:|---:|---:|---:|"
push_once() { # gib repo -> "KB s"
    local profile="{\"Location\":{\"type\":\"local\",\"path\":\"$2\"}}"
    { stream "$1" | /usr/bin/time -f '%M %e' "$KANDO_BIN" -q location push \
        --profile "$profile" --path mem "${EXTRA[@]}" - >/dev/null; } 2>&1 | tail -n1
}
pull_once() { # repo -> "KB s"
    local profile="{\"Location\":{\"type\":\"local\",\"path\":\"$1\"}}"
    { /usr/bin/time -f '%M %e' "$KANDO_BIN" -q location pull \
        --profile "$profile" --path mem - >/dev/null; } 2>&1 | tail -n1
}
mb() { bc -l <<<"$1 / 1024"; }

if [[ $PULL_ONLY == 1 ]]; then
    for gib in $SIZES; do
        repo=$WORK/repo-$gib
        rm -rf "$repo"; mkdir -p "$repo"
        push_once "$gib" "$repo" >/dev/null
    done
    sync
fi
for run in $(seq "$RUNS"); do
    for gib in $SIZES; do
        repo=$WORK/repo-$gib
        if [[ $PULL_ONLY == 1 ]]; then
            push_kb=0 push_s=–
        else
            rm -rf "$repo"; mkdir -p "$repo"
            read -r push_kb push_s <<<"$(push_once "$gib" "$repo")"
        fi
        read -r pull_kb pull_s <<<"$(pull_once "$repo")"
        push_mb=–
        [[ $PULL_ONLY == 1 ]] || push_mb=$(printf '%.1f' "$(mb "$push_kb")")
        printf '| %s GiB | %s | %s | %s | %.1f | %s |\n' "$gib" "$run" \
            "$push_mb" "$push_s" "$(mb "$pull_kb")" "$pull_s"
        [[ $PULL_ONLY == 1 ]] || rm -rf "$repo"
    done
done
[[ $PULL_ONLY == 0 ]] || for gib in $SIZES; do rm -rf "$WORK/repo-$gib"; done
