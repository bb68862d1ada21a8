#!/usr/bin/env bash
# Side-by-side benchmark: kando vs restic vs borg on two "daily" database dumps.
#
#   bench/bench.sh [options]
#
# Options (environment variable in brackets):
#   --work DIR         cache and scratch directory [KANDO_BENCH_DIR] (default /tmp/kando-bench)
#   --runs N           timed runs per tool and scenario [BENCH_RUNS] (default 3)
#   --synthetic [MB]   use the deterministic synthetic dump generator (default size 1024 MB)
#                      instead of PostgreSQL; chosen automatically when no PostgreSQL binaries
#   --pg               insist on PostgreSQL dumps (fail if the binaries are missing)
#   --pg-scale N       pgbench -i scale for the PostgreSQL data (default 40)
#   --pg-docs N        rows in the JSON table `docs` (default 2500000)
#   --pg-tx N          pgbench transactions between day1 and day2 (default 1000)
#   --pattern P        synthetic day2 changes: hot (default; 1 % of rows, all in the newest
#                      10 % of each table) or scattered (1 % of rows spread uniformly)
#   --tools LIST       comma list of kando,kando-enc,restic,borg,borg-zstd3 (default: all
#                      but kando-enc; kando-enc = kando on an encrypted repository)
#                      borg = borg's default compression (lz4), borg-zstd3 = --compression zstd,3
#   --s3-env FILE      also run the S3 scenarios (kando, restic) against the server in FILE:
#                      S3_ENDPOINT=http://127.0.0.1:PORT, S3_ACCESS_KEY, S3_SECRET_KEY,
#                      optional S3_BUCKET (default kando-bench, created if missing), S3_REGION
#   --no-local         skip the local-directory scenarios (with --s3-env: S3 only)
#   --no-verify        skip the untimed checksum check of what pull returns
#   --no-install       do not apt-get install missing restic / borgbackup / time
#   --data-only        only make (or reuse) the data files, then stop
#   --out FILE         Markdown result file (default bench/results/<date>-<host>.md; an
#                      existing file is never overwritten: -2, -3 … is appended)
# The kando binary is $KANDO_BIN (default <repo root>/target/release/kando); when it does not
# exist kando is skipped. restic compression follows RESTIC_COMPRESSION (default auto).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")
WORK=${KANDO_BENCH_DIR:-/tmp/kando-bench}
RUNS=${BENCH_RUNS:-3}
DATA_MODE=auto
SYN_MB=1024
PG_SCALE=40
PG_DOCS=2500000
PG_TX=1000
PATTERN=hot
TOOLS=kando,restic,borg,borg-zstd3
S3_ENV=
DO_LOCAL=1
VERIFY=1
INSTALL=1
DATA_ONLY=0
OUT_MD=
KANDO_BIN=${KANDO_BIN:-$REPO_ROOT/target/release/kando}
export RESTIC_COMPRESSION=${RESTIC_COMPRESSION:-auto}

die() { echo "bench: $*" >&2; exit 2; }
log() { echo "[$(date +%T)] $*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --work) WORK=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --synthetic)
            DATA_MODE=synthetic; shift
            if [[ $# -gt 0 && $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then SYN_MB=$1; shift; fi ;;
        --pg) DATA_MODE=pg; shift ;;
        --pg-scale) PG_SCALE=$2; shift 2 ;;
        --pg-docs) PG_DOCS=$2; shift 2 ;;
        --pg-tx) PG_TX=$2; shift 2 ;;
        --pattern) PATTERN=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --s3-env) S3_ENV=$(realpath "$2"); shift 2 ;;
        --no-local) DO_LOCAL=0; shift ;;
        --no-verify) VERIFY=0; shift ;;
        --no-install) INSTALL=0; shift ;;
        --data-only) DATA_ONLY=1; shift ;;
        --out) OUT_MD=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
mkdir -p "$WORK/data"
WORK=$(realpath "$WORK")

# ---------------------------------------------------------------- data
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
have_pg() {
    local b
    [[ -n $PGBIN ]] || return 1
    for b in initdb pg_ctl postgres pgbench pg_dump psql; do [[ -x $PGBIN/$b ]] || return 1; done
}
if [[ $DATA_MODE == auto ]]; then
    if have_pg; then DATA_MODE=pg; else DATA_MODE=synthetic; log "no PostgreSQL binaries: synthetic data"; fi
fi

if [[ $DATA_MODE == pg ]]; then
    have_pg || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
    if [[ $PG_SCALE == 40 && $PG_DOCS == 2500000 && $PG_TX == 1000 ]]; then tag=pg; else tag=pg-s$PG_SCALE-d$PG_DOCS-t$PG_TX; fi
    DAY1=$WORK/data/$tag-day1.sql
    DAY2=$WORK/data/$tag-day2.sql
    if [[ ! -s $DAY1 || ! -s $DAY2 ]]; then
        log "making PostgreSQL dumps (pgbench -s $PG_SCALE, $PG_DOCS docs rows, $PG_TX transactions) in $WORK"
        PGWORK=$WORK/pgwork-$tag
        "$BENCH_DIR/pg_data.sh" "$PGWORK" "$PG_SCALE" "$PG_DOCS" "$PG_TX"
        mv "$PGWORK/data/pg-day1.sql" "$DAY1"
        mv "$PGWORK/data/pg-day2.sql" "$DAY2"
        rm -rf "$PGWORK"
    fi
    DATA_DESC="pg_dump (plain SQL) of PostgreSQL $(basename "$(dirname "$PGBIN")"): pgbench -i -s $PG_SCALE + table docs of $PG_DOCS JSON rows; day2 = after $PG_TX pgbench transactions (random accounts rows), 1 % of docs rows updated (all among the newest 10 %), 1 % docs rows inserted"
else
    [[ $PATTERN == hot || $PATTERN == scattered ]] || die "--pattern must be hot or scattered"
    DAY1=$WORK/data/syn-${SYN_MB}mb-day1.sql
    DAY2=$WORK/data/syn-${SYN_MB}mb-$PATTERN-day2.sql
    if [[ ! -s $DAY1 || ! -s $DAY2 ]]; then
        log "generating synthetic dumps of $SYN_MB MB (day2 pattern $PATTERN)"
        python3 "$BENCH_DIR/gen_synthetic.py" --size-mb "$SYN_MB" --pattern "$PATTERN" --day1 "$DAY1.new" --day2 "$DAY2"
        if [[ -s $DAY1 ]] && cmp -s "$DAY1" "$DAY1.new"; then rm "$DAY1.new"; else mv "$DAY1.new" "$DAY1"; fi
    fi
    if [[ $PATTERN == hot ]]; then
        chg="~1 % of rows changed in place, all in the newest 10 % of each table"
    else
        chg="~1 % of rows changed in place, spread uniformly"
    fi
    DATA_DESC="synthetic dump-like text ($SYN_MB MB, bench/gen_synthetic.py, deterministic); day2 = $chg, + ~1 % rows appended to each table"
fi

sha_of() { # cached sha256 of a data file
    local f=$1
    if [[ ! -s $f.sha256 || $f.sha256 -ot $f ]]; then
        sha256sum <"$f" | cut -d' ' -f1 >"$f.sha256"
    fi
    cat "$f.sha256"
}
SIZE1=$(stat -c %s "$DAY1"); SIZE2=$(stat -c %s "$DAY2")
SHA1=$(sha_of "$DAY1"); SHA2=$(sha_of "$DAY2")
log "day1: $DAY1 ($SIZE1 bytes)"
log "day2: $DAY2 ($SIZE2 bytes)"
if [[ $DATA_ONLY == 1 ]]; then exit 0; fi

# ---------------------------------------------------------------- tools
IFS=, read -r -a TOOL_LIST <<<"$TOOLS"
want() { local t; for t in "${TOOL_LIST[@]}"; do [[ $t == "$1"* ]] && return 0; done; return 1; }
for t in "${TOOL_LIST[@]}"; do
    case $t in kando|kando-enc|restic|borg|borg-zstd3) ;; *) die "unknown tool $t" ;; esac
done

pkgs=()
[[ -x /usr/bin/time ]] || pkgs+=(time)
want restic && ! command -v restic >/dev/null && pkgs+=(restic)
want borg && ! command -v borg >/dev/null && pkgs+=(borgbackup)
if [[ ${#pkgs[@]} -gt 0 ]]; then
    [[ $INSTALL == 1 ]] || die "missing: ${pkgs[*]} (run without --no-install or install them)"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${pkgs[@]}" >/dev/null; }
fi

TOOLS_RUN=()
for t in "${TOOL_LIST[@]}"; do
    if [[ $t == kando* && ! -x $KANDO_BIN ]]; then
        echo "kando binary not built, skipping ($KANDO_BIN)"
        continue
    fi
    TOOLS_RUN+=("$t")
done
[[ ${#TOOLS_RUN[@]} -gt 0 ]] || die "no tool to run"

VERSIONS=()
for t in "${TOOLS_RUN[@]}"; do
    case $t in
        kando-enc) VERSIONS+=("kando-enc: the same kando with KANDO_PASSWORD set: argon2id (32 MiB, t=3) key, keyed BLAKE3 ids, XChaCha20-Poly1305") ;;
        kando) KANDO_BIN=$(realpath "$KANDO_BIN")
               VERSIONS+=("kando: $("$KANDO_BIN" --version 2>&1 | head -n1 || echo unknown) ($KANDO_BIN, $(stat -c %s "$KANDO_BIN") bytes, built $(date -r "$KANDO_BIN" '+%F %T'); git $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))") ;;
        restic) VERSIONS+=("restic: $(restic version) — repository format v2, compression $RESTIC_COMPRESSION (zstd), AES-256 + Poly1305 always on, pack size default") ;;
        borg) VERSIONS+=("borg: $(borg --version) — init -e none, default compression (lz4), default chunker (buzhash 19,23,21,4095)") ;;
        borg-zstd3) VERSIONS+=("borg-zstd3: $(borg --version) — init -e none, create --compression zstd,3, default chunker") ;;
    esac
done

# ---------------------------------------------------------------- S3
S3_BUCKET=; S3_ENDPOINT=; S3_REGION=
if [[ -n $S3_ENV ]]; then
    [[ -r $S3_ENV ]] || die "cannot read $S3_ENV"
    eval "$(python3 -c '
import shlex, sys
sys.path.insert(0, sys.argv[1])
import s3util
e = s3util.load_env(sys.argv[2])
for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_REGION"):
    if k not in e: sys.exit("missing " + k)
    print("%s=%s" % (k, shlex.quote(e[k])))' "$BENCH_DIR" "$S3_ENV")"
    python3 "$BENCH_DIR/s3util.py" "$S3_ENV" mkbucket
fi

BACKENDS=()
[[ $DO_LOCAL == 1 ]] && BACKENDS+=(local)
[[ -n $S3_ENV ]] && BACKENDS+=(s3)
[[ ${#BACKENDS[@]} -gt 0 ]] || die "nothing to do (--no-local without --s3-env)"

# ---------------------------------------------------------------- helpers
STAMP=$(date +%Y%m%d-%H%M%S)
LOGS=$WORK/logs/$STAMP
mkdir -p "$LOGS"
TSV=$LOGS/results.tsv
printf 'backend\ttool\tscenario\trun\tstatus\twall_s\tuser_s\tsys_s\tmaxrss_kb\tlogical_bytes\trepo_before\trepo_after\tcache_bytes\tload1\tnote\n' >"$TSV"

export RESTIC_PASSWORD=kando-bench
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO
export BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO

json_profile() { # local|s3 [prefix]
    python3 - "$@" <<'EOF'
import json, os, sys
if sys.argv[1] == "local":
    p = {"Location": {"type": "local", "path": os.environ["REPO_DIR"]}}
else:
    p = {"Location": {"type": "s3Compliant", "bucket": os.environ["S3_BUCKET"],
                      "endpoint": os.environ["S3_ENDPOINT"], "prefix": sys.argv[2],
                      "region": os.environ["S3_REGION"]},
         "Credential": {"Type": "keyPair",
                        "KeyPair": {"ID": os.environ["S3_ACCESS_KEY"],
                                    "Secret": os.environ["S3_SECRET_KEY"]}}}
print(json.dumps(p, separators=(",", ":")))
EOF
}

# Set up a fresh, empty repository for TOOL on BACKEND (untimed).
setup_repo() { # tool backend rundir
    local tool=$1 backend=$2 rundir=$3
    rm -rf "$rundir"; mkdir -p "$rundir"
    CACHE_DIR=$rundir/cache
    REPO_DIR=$rundir/repo
    S3_PREFIX=bench-$STAMP/$tool-$(basename "$rundir")
    export REPO_DIR
    if [[ $backend == s3 ]]; then
        export S3_BUCKET S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY
        python3 "$BENCH_DIR/s3util.py" "$S3_ENV" rm "$S3_PREFIX/"
    fi
    case $tool in
        kando|kando-enc)
            mkdir -p "$REPO_DIR"
            PROFILE=$(json_profile "$backend" "$S3_PREFIX") ;;
        restic)
            export RESTIC_CACHE_DIR=$CACHE_DIR
            if [[ $backend == s3 ]]; then
                export RESTIC_REPOSITORY=s3:$S3_ENDPOINT/$S3_BUCKET/$S3_PREFIX
                export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_DEFAULT_REGION=$S3_REGION
            else
                export RESTIC_REPOSITORY=$REPO_DIR
            fi
            restic init --repository-version 2 >"$rundir/init.log" 2>&1 ;;
        borg|borg-zstd3)
            export BORG_BASE_DIR=$CACHE_DIR BORG_REPO=$REPO_DIR
            borg init -e none >"$rundir/init.log" 2>&1 ;;
    esac
}

repo_bytes() { # backend
    if [[ $1 == s3 ]]; then
        python3 "$BENCH_DIR/s3util.py" "$S3_ENV" du "$S3_PREFIX/"
    elif [[ -d $REPO_DIR ]]; then
        du -sb "$REPO_DIR" | cut -f1
    else
        echo 0
    fi
}

cache_bytes() {
    if [[ -d $CACHE_DIR ]]; then du -sb "$CACHE_DIR" | cut -f1; else echo 0; fi
}

# CMD = the command line of a push (label: day1, day1-again, day2) or a pull.
push_cmd() { # tool label
    case $1 in
        kando) CMD=("$KANDO_BIN" location push --profile "$PROFILE" --path mydb/dump.sql -) ;;
        kando-enc) CMD=(env KANDO_PASSWORD=kando-bench "$KANDO_BIN" location push --profile "$PROFILE" --path mydb/dump.sql -) ;;
        restic) CMD=(restic backup --stdin --stdin-filename dump.sql --host bench --tag "${2%-again}") ;;
        borg) CMD=(borg create --stdin-name dump.sql "::$2" -) ;;
        borg-zstd3) CMD=(borg create --compression "zstd,3" --stdin-name dump.sql "::$2" -) ;;
    esac
}
pull_cmd() { # tool label (kando pulls the latest snapshot of its path)
    case $1 in
        kando) CMD=("$KANDO_BIN" location pull --profile "$PROFILE" --path mydb/dump.sql -) ;;
        kando-enc) CMD=(env KANDO_PASSWORD=kando-bench "$KANDO_BIN" location pull --profile "$PROFILE" --path mydb/dump.sql -) ;;
        restic) CMD=(restic dump --host bench --tag "$2" latest /dump.sql) ;;
        borg|borg-zstd3) CMD=(borg extract --stdout "::$2") ;;
    esac
}

# time -v field by its label
tv() { sed -n "s/^[[:space:]]*$1: //p" "$2" | head -n1; }
wall_of() { # "h:mm:ss" or "m:ss.ss" -> seconds
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"
}

# measure backend tool scenario run kind(push|pull) label input logical
measure() {
    local backend=$1 tool=$2 scen=$3 run=$4 kind=$5 label=$6 input=$7 logical=$8
    local base=$RUNDIR/$scen tf before after status=ok note=
    tf=$base.time
    before=$(repo_bytes "$backend")
    sync
    cat "$DAY1" >/dev/null  # warm-up read: keep the input (and restore target's source) in page cache
    if [[ $input != - ]]; then cat "$input" >/dev/null; fi
    local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
    if [[ $kind == push ]]; then
        push_cmd "$tool" "$label"
        # a pipe, as when a dump is streamed (not a redirect the tool could seek or mmap)
        # shellcheck disable=SC2002
        if ! cat "$input" | /usr/bin/time -v -o "$tf" "${CMD[@]}" >"$base.out" 2>"$base.err"; then status=FAIL; fi
        if [[ $tool == kando* ]]; then
            note=$(grep -o 'physicalSize[^0-9]*[0-9]*' "$base.out" | grep -o '[0-9]*$' | tail -n1 || true)
            if [[ -n $note ]]; then note="physicalSize=$note"; fi
        fi
    else
        pull_cmd "$tool" "$label"
        if ! /usr/bin/time -v -o "$tf" "${CMD[@]}" >/dev/null 2>"$base.err"; then status=FAIL; fi
    fi
    after=$(repo_bytes "$backend")
    local wall user sys rss
    wall=$(wall_of "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$tf")")
    user=$(tv 'User time (seconds)' "$tf"); sys=$(tv 'System time (seconds)' "$tf")
    rss=$(tv 'Maximum resident set size (kbytes)' "$tf")
    if [[ $status != ok ]]; then
        log "  $tool $scen run $run FAILED; stderr tail ($base.err):"
        tail -n 5 "$base.err" >&2 || true
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$tool" "$scen" "$run" \
        "$status" "$wall" "$user" "$sys" "$rss" "$logical" "$before" "$after" "$(cache_bytes)" "$load1" "$note" >>"$TSV"
    log "  $backend $tool $scen #$run: $status ${wall}s rss ${rss}kB repo $before -> $after"
}

verify() { # backend tool label expected-sha
    local backend=$1 tool=$2 label=$3 want=$4 got status
    pull_cmd "$tool" "$label"
    got=$("${CMD[@]}" 2>>"$RUNDIR/verify.err" | sha256sum | cut -d' ' -f1) || true
    if [[ $got == "$want" ]]; then status=ok; else status=MISMATCH; fi
    printf '%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t%s\n' "$backend" "$tool" "verify-$label" 0 "$status" "sha256=$got" >>"$TSV"
    log "  $backend $tool verify $label: $status"
}

# ---------------------------------------------------------------- run
log "tools: ${TOOLS_RUN[*]}; backends: ${BACKENDS[*]}; $RUNS runs; logs in $LOGS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
n=${#TOOLS_RUN[@]}
for ((run = 1; run <= RUNS; run++)); do
    for ((k = 0; k < n; k++)); do
        tool=${TOOLS_RUN[$(((k + run - 1) % n))]}   # rotate the order every run
        for backend in "${BACKENDS[@]}"; do
            if [[ $backend == s3 && $tool == borg* ]]; then continue; fi
            RUNDIR=$LOGS/$backend-$tool-r$run
            log "run $run: $tool ($backend)"
            setup_repo "$tool" "$backend" "$RUNDIR"
            measure "$backend" "$tool" push-day1 "$run" push day1 "$DAY1" "$SIZE1"
            measure "$backend" "$tool" push-day1-again "$run" push day1-again "$DAY1" "$SIZE1"
            measure "$backend" "$tool" pull-day1 "$run" pull day1 - "$SIZE1"
            if [[ $VERIFY == 1 && $run == 1 ]]; then verify "$backend" "$tool" day1 "$SHA1"; fi
            measure "$backend" "$tool" push-day2 "$run" push day2 "$DAY2" "$SIZE2"
            if [[ $VERIFY == 1 && $run == 1 ]]; then verify "$backend" "$tool" day2 "$SHA2"; fi
            # keep the logs, drop the repository
            rm -rf "$REPO_DIR" "$CACHE_DIR"
            if [[ $backend == s3 ]]; then python3 "$BENCH_DIR/s3util.py" "$S3_ENV" rm "$S3_PREFIX/"; fi
        done
    done
done

# ---------------------------------------------------------------- report
mkdir -p "$BENCH_DIR/results"
if [[ -z $OUT_MD ]]; then
    OUT_MD=$BENCH_DIR/results/$(date +%F)-$(hostname -s).md
    i=2
    while [[ -e $OUT_MD ]]; do OUT_MD=$BENCH_DIR/results/$(date +%F)-$(hostname -s)-$i.md; i=$((i + 1)); done
fi
META=$LOGS/meta.txt
{
    echo "date: $(date '+%F %T %Z')"
    echo "host: $(hostname -s); $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)); $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo); kernel $(uname -r)"
    echo "filesystem of the repositories: $(df -T "$LOGS" | awk 'NR==2 {print $2}') ($WORK)"
    echo "load average at start: $LOAD_START"
    echo "data: $DATA_DESC"
    echo "day1: $(basename "$DAY1") $SIZE1 bytes, sha256 $SHA1"
    echo "day2: $(basename "$DAY2") $SIZE2 bytes, sha256 $SHA2"
    echo "runs: $RUNS per tool and scenario (median shown), tools alternated, fresh repository per run"
    for v in "${VERSIONS[@]}"; do echo "version: $v"; done
    if [[ -n $S3_ENV ]]; then echo "s3: $S3_ENDPOINT bucket $S3_BUCKET"; fi
    echo "raw: $(basename "${OUT_MD%.md}").tsv; logs: $LOGS"
} >"$META"
python3 "$BENCH_DIR/summarize.py" "$TSV" "$META" >"$OUT_MD"
cp "$TSV" "${OUT_MD%.md}.tsv"
cat "$OUT_MD"
log "written $OUT_MD and ${OUT_MD%.md}.tsv"
