#!/usr/bin/env bash
# Benchmark of gzip dedup (issue 17): what the next day's gzip'ed dump costs, whether kando
# keeps up with its compressor, restore speed, and peak memory on long streams.
#
#   bench/gzip.sh [options]
#
# Options (environment variable in brackets):
#   --smoke            quick check: the first 20 MB of each dump, a 64 MiB memory stream, one
#                      run, report under the work directory only [GZIP_BENCH_SMOKE=1]
#   --work DIR         cache and scratch directory [KANDO_BENCH_DIR] (default /tmp/kando-bench)
#   --runs N           timed runs of the wall-time comparison, median shown (default 1)
#   --mem-mib "1024 8192"  plaintext MiB of the memory streams (default "1024 8192", i.e.
#                      1 and 8 GiB; smoke: 64)
#   --only LIST        comma list of sections: increment,wall,pull,memory (default: all;
#                      pull runs with increment, on the snapshots it pushes)
#   --compressors LIST comma list of gzip6,pigz6,go (default: all available; go needs `go`)
#   --no-install       do not apt-get install missing pigz / time
#   --out FILE         Markdown result file (default bench/results/<date>-gzip-<host>.md,
#                      never overwritten: -2, -3 … appended; smoke: <work>/gzip-logs/…)
#
# Data: the pg_dump pair of bench/bench.sh (<work>/data/pg-day1.sql, pg-day2.sql; made with
# bench/pg_data.sh through `bench.sh --pg --data-only` when missing). The gzip'ed days are
# cached beside them (pg-day1.sql.gzip6.gz …), so each compressor runs once per day.
#
# Sections:
#   increment  per compressor (none, gzip -6, pigz -6, Go's compress/gzip default level) and
#              per mode (gzip dedup on; --no-gzip-dedup): push day1, then day2, into a fresh
#              local repository; "day2 adds" = growth of the repository (du -sb), compared
#              with the ungzipped day2's. Issue 17's bar: ≤ 1.5× the ungzipped increment.
#   pull       after each day2 push: `kando location pull … - | gunzip -c > /dev/null`, wall
#              and plaintext MB/s, kando's peak RSS; an untimed pull checked by sha256.
#   wall       `cat day1 | gzip -6 > /dev/null` against `cat day1 | gzip -6 | kando location
#              push …` into a fresh repository (also pigz -6). Bar: ≤ 1.25×.
#   memory     a gzip -6 stream of N GiB of plaintext (day1 repeated, each copy's letters and
#              digits rotated so copies do not dedup; piped, never on disk) pushed, then
#              pulled, with kando's peak RSS; the pull is checked against the pushed bytes'
#              sha256. Bar: ≤ 128 MiB. Streams over 4 GiB of plaintext included.
#
# The kando binary is $KANDO_BIN (default <repo root>/target/release/kando). A binary
# without --no-gzip-dedup (before issue 17) runs the "on" mode only: it stores gzip as it
# comes, so its increments show the problem. Wall times are of whole pipelines (date +%s%N),
# peak RSS is GNU time's of the kando process alone. CPU-bound on 2 cores: see bench/README.md
# ("Caveats") for load and page cache.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")
WORK=${KANDO_BENCH_DIR:-/tmp/kando-bench}
SMOKE=${GZIP_BENCH_SMOKE:-0}
RUNS=1
MEM_MIB=
ONLY=increment,wall,pull,memory
COMPRESSORS=
INSTALL=1
OUT_MD=
KANDO_BIN=${KANDO_BIN:-$REPO_ROOT/target/release/kando}

die() { echo "gzip-bench: $*" >&2; exit 2; }
log() { echo "[$(date +%T)] $*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --smoke) SMOKE=1; shift ;;
        --work) WORK=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --mem-mib) MEM_MIB=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --compressors) COMPRESSORS=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --out) OUT_MD=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $SMOKE == 0 || $SMOKE == 1 ]] || die "GZIP_BENCH_SMOKE must be 0 or 1"
section() { [[ ",$ONLY," == *",$1,"* ]]; }
[[ -x $KANDO_BIN ]] || die "kando binary not found: $KANDO_BIN (cargo build --release, or set KANDO_BIN)"
KANDO_BIN=$(realpath "$KANDO_BIN")
mkdir -p "$WORK/data"
WORK=$(realpath "$WORK")

# ---------------------------------------------------------------- tools
pkgs=()
[[ -x /usr/bin/time ]] || pkgs+=(time)
command -v pigz >/dev/null || pkgs+=(pigz)
if [[ ${#pkgs[@]} -gt 0 ]]; then
    [[ $INSTALL == 1 ]] || die "missing: ${pkgs[*]} (run without --no-install or install them)"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${pkgs[@]}" </dev/null >/dev/null 2>&1 ||
        { apt-get update -q </dev/null >/dev/null && apt-get install -y -q "${pkgs[@]}" </dev/null >/dev/null; }
fi

STAMP=$(date +%Y%m%d-%H%M%S)
LOGS=$WORK/gzip-logs/$STAMP
mkdir -p "$LOGS"

# Go's compress/gzip at its default level, as a filter (built once when Go is there).
GO_GZIP=$WORK/gogzip/gogzip
if [[ ! -x $GO_GZIP ]] && command -v go >/dev/null; then
    mkdir -p "$WORK/gogzip"
    cat >"$WORK/gogzip/main.go" <<'EOF'
// gzip filter: stdin -> compress/gzip (default level, no name, mtime 0) -> stdout.
package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
)

func main() {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	w := gzip.NewWriter(out)
	if _, err := io.Copy(w, bufio.NewReaderSize(os.Stdin, 1<<20)); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
}
EOF
    log "building the Go gzip filter ($(go version))"
    (cd "$WORK/gogzip" && GO111MODULE=off GOCACHE=$WORK/gogzip/cache go build -o gogzip main.go) ||
        log "Go filter did not build; skipping Go"
fi

if [[ -z $COMPRESSORS ]]; then
    COMPRESSORS=gzip6,pigz6
    [[ -x $GO_GZIP ]] && COMPRESSORS+=,go
fi
IFS=, read -r -a COMP_LIST <<<"$COMPRESSORS"
compress_cmd() { # name -> the filter's command line
    case $1 in
        gzip6) echo "gzip -c -6" ;;
        pigz6) echo "pigz -c -6" ;;
        go) [[ -x $GO_GZIP ]] || die "go compressor asked for, but no Go filter (install golang-go)"
            echo "$GO_GZIP" ;;
        *) die "unknown compressor $1" ;;
    esac
}
for c in "${COMP_LIST[@]}"; do compress_cmd "$c" >/dev/null; done

if "$KANDO_BIN" location push --help 2>&1 | grep -q -- --no-gzip-dedup; then
    MODES=(on off)
else
    MODES=(on)
    log "$KANDO_BIN has no --no-gzip-dedup (no gzip dedup yet): mode 'on' only"
fi

# ---------------------------------------------------------------- data
DAY1=$WORK/data/pg-day1.sql
DAY2=$WORK/data/pg-day2.sql
if [[ ! -s $DAY1 || ! -s $DAY2 ]]; then
    log "making the PostgreSQL dump pair (bench/bench.sh --pg --data-only)"
    "$BENCH_DIR/bench.sh" --pg --data-only --work "$WORK"
fi
if [[ $SMOKE == 1 ]]; then
    mkdir -p "$WORK/data/smoke"
    for d in 1 2; do
        src=$WORK/data/pg-day$d.sql dst=$WORK/data/smoke/pg-day$d.sql
        if [[ ! -s $dst || $dst -ot $src ]]; then head -c 20000000 "$src" >"$dst"; fi
    done
    DAY1=$WORK/data/smoke/pg-day1.sql
    DAY2=$WORK/data/smoke/pg-day2.sql
    MEM_MIB=${MEM_MIB:-64}
fi
read -r -a MEM_LIST <<<"${MEM_MIB:-1024 8192}"
for m in "${MEM_LIST[@]}"; do [[ $m =~ ^[1-9][0-9]*$ ]] || die "--mem-mib takes positive integers"; done
SIZE1=$(stat -c %s "$DAY1"); SIZE2=$(stat -c %s "$DAY2")
log "day1 $DAY1 ($SIZE1 B), day2 $DAY2 ($SIZE2 B); logs in $LOGS"

# The gzip'ed days, cached (made once per compressor).
gz_of() { # day-file compressor -> path
    local f=$1.$2.gz
    if [[ ! -s $f || $f -ot $1 ]]; then
        log "compressing $(basename "$1") with $2"
        # shellcheck disable=SC2046
        $(compress_cmd "$2") <"$1" >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}
sha_of() { # cached sha256 of a file
    if [[ ! -s $1.sha256 || $1.sha256 -ot $1 ]]; then sha256sum <"$1" | cut -d' ' -f1 >"$1.sha256"; fi
    cat "$1.sha256"
}

# ---------------------------------------------------------------- helpers
REPO=
PROFILE=
fresh_repo() {
    REPO=$LOGS/repo
    rm -rf "$REPO"; mkdir -p "$REPO"
    PROFILE="{\"Location\":{\"type\":\"local\",\"path\":\"$REPO\"}}"
}
repo_bytes() { du -sb "$REPO" | cut -f1; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mode_flags() { if [[ $1 == off ]]; then echo --no-gzip-dedup; fi; }
stream_line() { # stderr file -> the gzip/zlib line, or –
    local l
    l=$(grep -m1 -E '^(kando: )?(gzip|zlib) stream:' "$1" | sed 's/^kando: //' || true)
    echo "${l:-–}"
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
warm() { cat "$@" >/dev/null; }

# push INPUT-FILE PATH MODE TAG: sets P_WALL P_RSS_KB P_ADDED P_LINE
push_file() {
    local input=$1 path=$2 mode=$3 tag=$4 before t0 t1
    before=$(repo_bytes)
    warm "$input"; sync
    t0=$(now_ns)
    # shellcheck disable=SC2046,SC2002
    cat "$input" | /usr/bin/time -f '%M' -o "$LOGS/$tag.time" \
        "$KANDO_BIN" location push --profile "$PROFILE" --path "$path" $(mode_flags "$mode") - \
        >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" || { tail -n 5 "$LOGS/$tag.err" >&2; die "push $tag failed"; }
    t1=$(now_ns)
    P_WALL=$(secs "$t0" "$t1")
    P_RSS_KB=$(tail -n1 "$LOGS/$tag.time")
    P_ADDED=$(($(repo_bytes) - before))
    P_LINE=$(stream_line "$LOGS/$tag.err")
}

# pull PATH TAG PLAIN-BYTES GUNZIP(0|1) WANT-SHA: sets L_WALL L_MBS L_RSS_KB L_OK
pull_path() {
    local path=$1 tag=$2 plain=$3 gunzip=$4 want=$5 t0 t1 got
    sync
    t0=$(now_ns)
    if [[ $gunzip == 1 ]]; then
        /usr/bin/time -f '%M' -o "$LOGS/$tag.time" "$KANDO_BIN" location pull --profile "$PROFILE" --path "$path" - \
            2>"$LOGS/$tag.err" | gunzip -c >/dev/null
    else
        /usr/bin/time -f '%M' -o "$LOGS/$tag.time" "$KANDO_BIN" location pull --profile "$PROFILE" --path "$path" - \
            2>"$LOGS/$tag.err" >/dev/null
    fi
    t1=$(now_ns)
    L_WALL=$(secs "$t0" "$t1")
    L_MBS=$(awk -v b="$plain" -v s="$L_WALL" 'BEGIN { printf "%.1f", b / 1e6 / s }')
    L_RSS_KB=$(tail -n1 "$LOGS/$tag.time")
    got=$("$KANDO_BIN" location pull --profile "$PROFILE" --path "$path" - 2>>"$LOGS/$tag.err" | sha256sum | cut -d' ' -f1)
    if [[ $got == "$want" ]]; then L_OK=ok; else L_OK=MISMATCH; fi
}

TSV=$LOGS/results.tsv
printf 'section\tcompressor\tmode\tmetric\tvalue\n' >"$TSV"
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }

INC_ROWS=()
PULL_ROWS=()
WALL_ROWS=()
MEM_ROWS=()

# ---------------------------------------------------------------- increment (+ pull)
if section increment; then
    log "increment: ungzipped"
    fresh_repo
    push_file "$DAY1" db/dump.sql on plain-day1
    plain_day1_added=$P_ADDED; plain_day1_wall=$P_WALL
    push_file "$DAY2" db/dump.sql on plain-day2
    PLAIN_INC=$P_ADDED
    rec increment none - day2_added "$PLAIN_INC"
    INC_ROWS+=("| none | – | $SIZE1 | $plain_day1_added | $PLAIN_INC | 1.00× | ${plain_day1_wall} / ${P_WALL} | $(mib "$P_RSS_KB") | – |")
    for comp in "${COMP_LIST[@]}"; do
        gz1=$(gz_of "$DAY1" "$comp"); gz2=$(gz_of "$DAY2" "$comp")
        gsize1=$(stat -c %s "$gz1")
        for mode in "${MODES[@]}"; do
            log "increment: $comp, gzip dedup $mode"
            fresh_repo
            push_file "$gz1" db/dump.sql.gz "$mode" "$comp-$mode-day1"
            d1_added=$P_ADDED d1_wall=$P_WALL rss1=$P_RSS_KB
            push_file "$gz2" db/dump.sql.gz "$mode" "$comp-$mode-day2"
            ratio=$(awk -v a="$P_ADDED" -v b="$PLAIN_INC" 'BEGIN { printf "%.2f", a / b }')
            rss=$(( P_RSS_KB > rss1 ? P_RSS_KB : rss1 ))
            rec increment "$comp" "$mode" day2_added "$P_ADDED"
            rec increment "$comp" "$mode" day2_vs_plain "$ratio"
            INC_ROWS+=("| $comp | $mode | $gsize1 | $d1_added | $P_ADDED | ${ratio}× | ${d1_wall} / ${P_WALL} | $(mib "$rss") | $P_LINE |")
            if section pull; then
                log "pull: $comp, gzip dedup $mode"
                pull_path db/dump.sql.gz "pull-$comp-$mode" "$SIZE2" 1 "$(sha_of "$gz2")"
                rec pull "$comp" "$mode" pull_gunzip_s "$L_WALL"
                PULL_ROWS+=("| $comp | $mode | $(stat -c %s "$gz2") | $L_WALL | $L_MBS | $(mib "$L_RSS_KB") | $L_OK |")
            fi
            rm -rf "$REPO"
        done
    done
fi

# ---------------------------------------------------------------- wall: keeping up with the compressor
if section wall; then
    for comp in "${COMP_LIST[@]}"; do
        [[ $comp == go ]] && continue
        cmd=$(compress_cmd "$comp")
        for mode in "${MODES[@]}"; do
            alone=() with=() rss=()
            for ((run = 1; run <= RUNS; run++)); do
                log "wall: $comp alone / with kando (gzip dedup $mode), run $run"
                warm "$DAY1"; sync
                t0=$(now_ns)
                # shellcheck disable=SC2002
                cat "$DAY1" | $cmd >/dev/null
                t1=$(now_ns)
                alone+=("$(secs "$t0" "$t1")")
                fresh_repo
                warm "$DAY1"; sync
                tag=wall-$comp-$mode-r$run
                t0=$(now_ns)
                # shellcheck disable=SC2046,SC2002
                cat "$DAY1" | $cmd | /usr/bin/time -f '%M' -o "$LOGS/$tag.time" \
                    "$KANDO_BIN" location push --profile "$PROFILE" --path db/dump.sql.gz $(mode_flags "$mode") - \
                    >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" || { tail -n 5 "$LOGS/$tag.err" >&2; die "push $tag failed"; }
                t1=$(now_ns)
                with+=("$(secs "$t0" "$t1")")
                rss+=("$(tail -n1 "$LOGS/$tag.time")")
                rm -rf "$REPO"
            done
            a=$(printf '%s\n' "${alone[@]}" | median)
            w=$(printf '%s\n' "${with[@]}" | median)
            r=$(printf '%s\n' "${rss[@]}" | median)
            ratio=$(awk -v a="$a" -v w="$w" 'BEGIN { printf "%.2f", w / a }')
            rec wall "$comp" "$mode" alone_s "$a"
            rec wall "$comp" "$mode" with_kando_s "$w"
            WALL_ROWS+=("| \`$cmd\` | $mode | $a | $w | ${ratio}× | $(awk -v b="$SIZE1" -v s="$w" 'BEGIN { printf "%.1f", b / 1e6 / s }') | $(mib "$r") |")
        done
    done
fi

# ---------------------------------------------------------------- memory: long streams
# N MiB of plaintext: day1 over and over, copy k with its lower-case letters rotated by k
# and its digits by k (so copies share no chunk), cut at N MiB.
mem_stream() {
    local want=$(($1 << 20)) L=abcdefghijklmnopqrstuvwxyz D=0123456789
    (
        set +o pipefail
        k=0
        while :; do
            s=$((k % 26)) d=$((k % 10))
            tr 'a-z0-9' "${L:s}${L:0:s}${D:d}${D:0:d}" <"$DAY1" || break
            k=$((k + 1))
        done | head -c "$want"
    )
}
# A pass-through that writes "<bytes> <sha256>" of what went through to $1 at EOF.
count_sha() {
    python3 -c '
import hashlib, sys
h = hashlib.sha256(); n = 0
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    b = i.read(1 << 20)
    if not b: break
    h.update(b); n += len(b); o.write(b)
o.flush()
open(sys.argv[1], "w").write("%d %s\n" % (n, h.hexdigest()))' "$1"
}

if section memory; then
    for mib_n in "${MEM_LIST[@]}"; do
        fresh_repo
        tag=mem-$mib_n
        log "memory: gzip -6 of $mib_n MiB of plaintext, push"
        t0=$(now_ns)
        # shellcheck disable=SC2046
        mem_stream "$mib_n" | gzip -c -6 | count_sha "$LOGS/$tag.sum" |
            /usr/bin/time -f '%M' -o "$LOGS/$tag-push.time" \
                "$KANDO_BIN" location push --profile "$PROFILE" --path mem/stream.gz - \
                >"$LOGS/$tag-push.out" 2>"$LOGS/$tag-push.err" || { tail -n 5 "$LOGS/$tag-push.err" >&2; die "push $tag failed"; }
        t1=$(now_ns)
        push_s=$(secs "$t0" "$t1")
        read -r gz_bytes want <"$LOGS/$tag.sum"
        push_kb=$(tail -n1 "$LOGS/$tag-push.time")
        line=$(stream_line "$LOGS/$tag-push.err")
        sync
        log "memory: pull"
        t0=$(now_ns)
        got=$(/usr/bin/time -f '%M' -o "$LOGS/$tag-pull.time" \
            "$KANDO_BIN" location pull --profile "$PROFILE" --path mem/stream.gz - 2>"$LOGS/$tag-pull.err" |
            sha256sum | cut -d' ' -f1)
        t1=$(now_ns)
        pull_s=$(secs "$t0" "$t1")
        pull_kb=$(tail -n1 "$LOGS/$tag-pull.time")
        if [[ $got == "$want" ]]; then ok=ok; else ok=MISMATCH; fi
        stored=$(repo_bytes)
        rm -rf "$REPO"
        rec memory gzip6 on "push_rss_kb_$mib_n" "$push_kb"
        rec memory gzip6 on "pull_rss_kb_$mib_n" "$pull_kb"
        MEM_ROWS+=("| $(awk -v m="$mib_n" 'BEGIN { if (m >= 1024) printf "%g GiB", m / 1024; else printf "%d MiB", m }') | $gz_bytes | $stored | $push_s | $(mib "$push_kb") | $pull_s | $(mib "$pull_kb") | $ok | $line |")
    done
fi

# ---------------------------------------------------------------- report
if [[ -z $OUT_MD ]]; then
    if [[ $SMOKE == 1 ]]; then
        OUT_MD=$LOGS/report.md
    else
        mkdir -p "$BENCH_DIR/results"
        OUT_MD=$BENCH_DIR/results/$(date +%F)-gzip-$(hostname -s).md
        i=2
        while [[ -e $OUT_MD ]]; do OUT_MD=$BENCH_DIR/results/$(date +%F)-gzip-$(hostname -s)-$i.md; i=$((i + 1)); done
    fi
fi
{
    echo "# gzip dedup (issue 17)$([[ $SMOKE == 1 ]] && echo ' — smoke run')"
    echo
    echo "- date: $(date '+%F %T %Z'); host: $(hostname -s), $(nproc) CPUs, load at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- kando: $("$KANDO_BIN" --version 2>&1 | head -n1) ($KANDO_BIN, built $(date -r "$KANDO_BIN" '+%F %T'); git $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "- modes: ${MODES[*]}$([[ ${#MODES[@]} == 1 ]] && echo ' (binary without --no-gzip-dedup)')"
    echo "- producers: $(gzip --version | head -n1); $(pigz --version 2>&1 | head -n1)$([[ -x $GO_GZIP ]] && echo "; Go compress/gzip default level ($(go version 2>/dev/null | cut -d' ' -f3))")"
    echo "- day1: $(basename "$DAY1") $SIZE1 B; day2: $(basename "$DAY2") $SIZE2 B"
    echo "- raw numbers: $TSV; logs: $LOGS"
    if [[ ${#INC_ROWS[@]} -gt 0 ]]; then
        echo
        echo "## Next-day increment (bar: day2 adds ≤ 1.5× the ungzipped increment)"
        echo
        echo "| compressor | gzip dedup | day1 input B | day1 adds B | day2 adds B | vs ungzipped | push s (day1 / day2) | push peak RSS MiB | stderr (day2) |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
        printf '%s\n' "${INC_ROWS[@]}"
    fi
    if [[ ${#PULL_ROWS[@]} -gt 0 ]]; then
        echo
        echo "## Restore: \`kando location pull … - | gunzip -c > /dev/null\` (day2)"
        echo
        echo "| compressor | gzip dedup | gzip'ed B | wall s | plaintext MB/s | pull peak RSS MiB | sha256 |"
        echo "|---|---|---:|---:|---:|---:|---|"
        printf '%s\n' "${PULL_ROWS[@]}"
    fi
    if [[ ${#WALL_ROWS[@]} -gt 0 ]]; then
        echo
        echo "## Keeping up with the compressor: \`cat day1 | C > /dev/null\` vs \`cat day1 | C | kando location push\` (bar: ≤ 1.25×; median of $RUNS)"
        echo
        echo "| C | gzip dedup | C alone s | C + kando s | ratio | plaintext MB/s | push peak RSS MiB |"
        echo "|---|---|---:|---:|---:|---:|---:|"
        printf '%s\n' "${WALL_ROWS[@]}"
    fi
    if [[ ${#MEM_ROWS[@]} -gt 0 ]]; then
        echo
        echo "## Memory on long streams: gzip -6 of N of plaintext, piped (bar: ≤ 128 MiB)"
        echo
        echo "| plaintext | gzip'ed B | stored B | push s | push peak RSS MiB | pull s | pull peak RSS MiB | round trip | stderr |"
        echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
        printf '%s\n' "${MEM_ROWS[@]}"
    fi
} >"$OUT_MD"
cp "$TSV" "${OUT_MD%.md}.tsv"
cat "$OUT_MD"
log "written $OUT_MD and ${OUT_MD%.md}.tsv"
