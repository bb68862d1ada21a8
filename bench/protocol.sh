#!/usr/bin/env bash
# The cost of the gc protocol: two kando binaries side by side on the same data, the same
# machine, in one run (alternating, so load changes hit both alike).
#
#   bench/protocol.sh BEFORE_BIN AFTER_BIN [RUNS] [SIZE_MB]
#
# Per run and binary, on a fresh local repository: push day1 (new data), push day2
# (mostly known), push day1 again (all known), pull day2, delete day1 (gc finds little to
# free: the others share it), gc with nothing to do, delete everything (gc frees it all;
# --gc-grace 0, so condemning and deleting happen in the same run). Data: the synthetic
# dump pair of bench/gen_synthetic.py (cached under $KANDO_BENCH_DIR, default
# /tmp/kando-bench). Prints a Markdown table of medians (seconds).
set -euo pipefail
BEFORE=$1 AFTER=$2 RUNS=${3:-5} SIZE=${4:-600}
WORK=${KANDO_BENCH_DIR:-/tmp/kando-bench}/protocol
DATA=$WORK/data
mkdir -p "$DATA"
if [ ! -s "$DATA/day2-$SIZE.sql" ]; then
  python3 "$(dirname "$0")/gen_synthetic.py" --size-mb "$SIZE" \
    --day1 "$DATA/day1-$SIZE.sql" --day2 "$DATA/day2-$SIZE.sql"
fi
D1=$DATA/day1-$SIZE.sql D2=$DATA/day2-$SIZE.sql
export KANDO_GC_GRACE=0
now() { date +%s.%N; }
step() { # label bin args... ; appends "label seconds" to $OUT
  local label=$1; shift
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>>"$WORK/stderr" || { echo "failed: $label" >&2; exit 1; }
  t1=$(now)
  echo "$label $(echo "$t1 - $t0" | bc)" >>"$OUT"
}
for r in $(seq "$RUNS"); do
  for which in before after; do
    bin=$BEFORE; [ "$which" = after ] && bin=$AFTER
    OUT=$WORK/$which.times
    repo=$WORK/repo-$which; rm -rf "$repo"; mkdir -p "$repo"
    P="{\"Location\":{\"type\":\"local\",\"path\":\"$repo\"}}"
    step "push-new" "$bin" location push --profile "$P" --path a/d1 "$D1"
    step "push-day2" "$bin" location push --profile "$P" --path a/d2 "$D2"
    step "push-known" "$bin" location push --profile "$P" --path a/d1b "$D1"
    step "pull" "$bin" location pull --profile "$P" --path a/d2 -
    step "delete+gc" "$bin" location delete --profile "$P" --path a/d1
    step "gc-idle" "$bin" repo gc --profile "$P"
    step "delete-all+gc" "$bin" location delete --profile "$P" --path a
    rm -rf "$repo"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "| step | before (s) | after (s) | change |"
echo "|---|---|---|---|"
for label in push-new push-day2 push-known pull delete+gc gc-idle delete-all+gc; do
  b=$(grep "^$label " "$WORK/before.times" | cut -d' ' -f2 | median)
  a=$(grep "^$label " "$WORK/after.times" | cut -d' ' -f2 | median)
  printf '| %s | %.3f | %.3f | %+.1f %% |\n' "$label" "$b" "$a" "$(echo "($a - $b) * 100 / $b" | bc -l)"
done
rm -f "$WORK/before.times" "$WORK/after.times"
