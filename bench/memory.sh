#!/usr/bin/env bash
# Peak memory of kando push and pull on incompressible, never-seen data (the worst case:
# every byte is new and stored raw), for several stream lengths, several runs each.
#
#   bench/memory.sh [--sizes "1 8"] [--runs 3] [--work DIR] [-- extra push flags]
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
while [[ $# -gt 0 ]]; do
    case $1 in
        --sizes) SIZES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
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
for run in $(seq "$RUNS"); do
    for gib in $SIZES; do
        repo=$WORK/repo-$gib
        rm -rf "$repo"; mkdir -p "$repo"
        profile="{\"Location\":{\"type\":\"local\",\"path\":\"$repo\"}}"
        push=$( { stream "$gib" | /usr/bin/time -f '%M %e' "$KANDO_BIN" -q location push \
            --profile "$profile" --path mem "${EXTRA[@]}" - >/dev/null; } 2>&1 | tail -n1)
        pull=$( { /usr/bin/time -f '%M %e' "$KANDO_BIN" -q location pull \
            --profile "$profile" --path mem - >/dev/null; } 2>&1 | tail -n1)
        read -r push_kb push_s <<<"$push"
        read -r pull_kb pull_s <<<"$pull"
        printf '| %s GiB | %s | %.1f | %s | %.1f | %s |\n' "$gib" "$run" \
            "$(bc -l <<<"$push_kb / 1024")" "$push_s" "$(bc -l <<<"$pull_kb / 1024")" "$pull_s"
        rm -rf "$repo"
    done
done
