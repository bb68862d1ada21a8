#!/usr/bin/env bash
# kando (and restic where it can reach them) against the cloud-storage emulators on loopback:
# Azurite (Azure Blob) and fake-gcs-server (GCS), the 658 MB pg_dump pair, in one run.
#
#   bench/cloud.sh [RUNS]                  (default 3; medians over the runs)
#
# Per run, emulator and tool, on a freshly started emulator with a fresh container/bucket,
# timed one by one with GNU time -v (wall, CPU, peak RSS of the tool):
#   push-day1  day1 into the empty location (new data)
#   push-day2  day2 to the same path (mostly known data: dedup)
#   pull       the newest snapshot of the path (= day2) to /dev/null
# Stored bytes (the sum of the object sizes in the container/bucket) after each push, and the
# emulator's own peak RSS. In the first run an extra, untimed pull is checked with sha256sum.
#
# Environment:
#   KANDO_BIN         kando binary (default target/x86_64-unknown-linux-musl/release/kando,
#                     else target/release/kando)
#   TOOLS             default "kando restic"; kando-enc = kando with KANDO_PASSWORD set
#   EMULATORS         default "azurite fake-gcs"
#   KANDO_BENCH_DATA  directory holding pg-day1.sql and pg-day2.sql (default
#                     ${KANDO_BENCH_DIR:-/tmp/kando-bench}/data; made by bench/pg_data.sh if
#                     missing)
#   CLOUD_BENCH_WORK  scratch: emulator dirs, restic caches, logs, the TSV
#                     (default /tmp/kando-cloud-bench/work)
#   AZURITE_PORT      default 10000. restic 0.14 (Debian) can only reach Azurite there: its
#                     legacy Azure SDK maps the account devstoreaccount1 to the hard-coded
#                     http://127.0.0.1:10000/devstoreaccount1 and has no endpoint setting. On
#                     another port restic/azure is skipped.
#   OUT               also write the Markdown report to this file
#
# restic/fake-gcs is always skipped: the Debian restic 0.14.0 is built with
# cloud.google.com/go 0.56, whose STORAGE_EMULATOR_HOST only redirects object downloads;
# every JSON-API call (bucket/object metadata, uploads) still goes to
# https://storage.googleapis.com, and restic has no endpoint option. Nothing here leaves
# 127.0.0.1. Needs: python3, GNU time (/usr/bin/time), restic (apt), the emulators
# (scripts/emulators/install.sh all).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
RUNS=${1:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/cloud.sh [RUNS]" >&2; exit 2; }
if [[ -z ${KANDO_BIN:-} ]]; then
  KANDO_BIN=$ROOT/target/x86_64-unknown-linux-musl/release/kando
  [[ -x $KANDO_BIN ]] || KANDO_BIN=$ROOT/target/release/kando
fi
TOOLS=${TOOLS:-kando restic}
EMULATORS=${EMULATORS:-azurite fake-gcs}
DATA=${KANDO_BENCH_DATA:-${KANDO_BENCH_DIR:-/tmp/kando-bench}/data}
WORK=${CLOUD_BENCH_WORK:-/tmp/kando-cloud-bench/work}
AZURITE_PORT=${AZURITE_PORT:-10000}
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export RESTIC_PASSWORD=kando-bench RESTIC_COMPRESSION=${RESTIC_COMPRESSION:-auto}
CU=(python3 "$BENCH_DIR/cloudutil.py")

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "cloud.sh: $*" >&2; exit 2; }

[[ -x $KANDO_BIN ]] || die "kando binary $KANDO_BIN not found (set KANDO_BIN)"
[[ -x /usr/bin/time ]] || die "GNU time missing: apt-get install time"
[[ " $TOOLS " != *" restic "* ]] || command -v restic >/dev/null || die "restic missing: apt-get install restic"
if [[ ! -s $DATA/pg-day1.sql || ! -s $DATA/pg-day2.sql ]]; then
  bash "$BENCH_DIR/pg_data.sh" "$(dirname "$DATA")"
fi
D1=$DATA/pg-day1.sql D2=$DATA/pg-day2.sql
S1=$(stat -c %s "$D1") S2=$(stat -c %s "$D2")

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$WORK/$STAMP
mkdir -p "$LOGS"
TSV=$LOGS/results.tsv
printf 'run\ttool\temulator\tstep\tstatus\twall_s\tuser_s\tsys_s\trss_kb\tstored_bytes\tobjects\temu_hwm_kb\tload1\n' >"$TSV"

# ---------------------------------------------------------------- emulators

# No listener on the port (SO_REUSEADDR, as node binds: restic leaves many TIME_WAITs there).
port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen()' "$1" 2>/dev/null
}
answers() { # url: any HTTP answer
  python3 - "$1" <<'PY' 2>/dev/null
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
c.request("GET", u.path or "/")
c.getresponse()
PY
}
EMU_PID= EMU_DIR= EMU_ENDPOINT=
start_emulator() { # kind dir
  EMU_DIR=$2
  rm -rf "$EMU_DIR"
  case $1 in
    azurite)
      # Same flags as scripts/emulators/server.sh, but on a fixed port (restic needs 10000).
      local bin i
      bin=$("$ROOT/scripts/emulators/install.sh" --where azurite) || die "Azurite not installed"
      port_free "$AZURITE_PORT" || die "port $AZURITE_PORT is busy (set AZURITE_PORT)"
      mkdir -p "$EMU_DIR/data"
      (cd "$EMU_DIR/data" && exec setsid "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
        --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose --silent \
        --disableProductStyleUrl </dev/null >"$EMU_DIR/azurite.out" 2>&1) &
      EMU_PID=$!
      for ((i = 0; i < 300; i++)); do
        answers "http://127.0.0.1:$AZURITE_PORT/" && break
        kill -0 "$EMU_PID" 2>/dev/null || { cat "$EMU_DIR/azurite.out" >&2; die "Azurite exited"; }
        sleep 0.1
      done
      EMU_ENDPOINT=http://127.0.0.1:$AZURITE_PORT/$AZ_ACCOUNT ;;
    fake-gcs)
      bash "$ROOT/scripts/emulators/server.sh" start fake-gcs "$EMU_DIR" >"$EMU_DIR.env"
      EMU_ENDPOINT=$(sed -n 's/^GCS_ENDPOINT=//p' "$EMU_DIR.env")
      read -r EMU_PID _ <"$EMU_DIR/pids/fake-gcs.pid" ;;
  esac
}
stop_emulator() {
  [[ -n $EMU_PID ]] || return 0
  if [[ -e $EMU_DIR/pids ]]; then
    bash "$ROOT/scripts/emulators/server.sh" stop "$EMU_DIR"
  else
    kill -TERM "$EMU_PID" 2>/dev/null || true
    wait "$EMU_PID" 2>/dev/null || true
  fi
  EMU_PID=
}
trap stop_emulator EXIT
emu_hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$EMU_PID/status" 2>/dev/null || echo 0; }

mk_store() { # kind name
  case $1 in
    azurite) "${CU[@]}" azure "$EMU_ENDPOINT" "$AZ_KEY" mk "$2" ;;
    fake-gcs) "${CU[@]}" gcs "$EMU_ENDPOINT" mk "$2" ;;
  esac
}
du_store() { # kind name -> "bytes objects"
  case $1 in
    azurite) "${CU[@]}" azure "$EMU_ENDPOINT" "$AZ_KEY" du "$2" ;;
    fake-gcs) "${CU[@]}" gcs "$EMU_ENDPOINT" du "$2" ;;
  esac
}

# ---------------------------------------------------------------- tools

# Sets CMD (the command) and ENV_CMD (env assignments) for tool/emulator/step.
command_for() { # tool kind store step
  local tool=$1 kind=$2 store=$3 step=$4 profile
  ENV_CMD=(env)
  case $tool in
    kando | kando-enc)
      if [[ $kind == azurite ]]; then
        profile="{\"Location\":{\"type\":\"azure\",\"bucket\":\"$store\",\"endpoint\":\"$EMU_ENDPOINT\",\"prefix\":\"bench\"},\"Credential\":{\"Type\":\"keyPair\",\"KeyPair\":{\"ID\":\"$AZ_ACCOUNT\",\"Secret\":\"$AZ_KEY\"}}}"
      else
        # Empty endpoint + STORAGE_EMULATOR_HOST: the emulator, without credentials.
        profile="{\"Location\":{\"type\":\"gcs\",\"bucket\":\"$store\",\"endpoint\":\"\",\"prefix\":\"bench\"}}"
        ENV_CMD+=("STORAGE_EMULATOR_HOST=${EMU_ENDPOINT#http://}")
      fi
      [[ $tool == kando-enc ]] && ENV_CMD+=(KANDO_PASSWORD=kando-bench)
      case $step in
        push-*) CMD=("$KANDO_BIN" location push --profile "$profile" --path pg/dump -) ;;
        pull) CMD=("$KANDO_BIN" location pull --profile "$profile" --path pg/dump -) ;;
      esac ;;
    restic)
      ENV_CMD+=("RESTIC_REPOSITORY=azure:$store:/bench" "AZURE_ACCOUNT_NAME=$AZ_ACCOUNT"
        "AZURE_ACCOUNT_KEY=$AZ_KEY" "RESTIC_CACHE_DIR=$RUN_DIR/restic-cache")
      case $step in
        init) CMD=(restic init --repository-version 2) ;;
        push-*) CMD=(restic backup --stdin --stdin-filename dump.sql --host bench) ;;
        pull) CMD=(restic dump --host bench latest /dump.sql) ;;
      esac ;;
  esac
}

# Why a tool cannot run on an emulator (empty: it can).
unreachable() { # tool kind
  case $1/$2 in
    restic/fake-gcs) echo "restic 0.14 (Debian, cloud.google.com/go 0.56): STORAGE_EMULATOR_HOST redirects only downloads; JSON-API calls go to https://storage.googleapis.com" ;;
    restic/azurite) [[ $AZURITE_PORT == 10000 ]] || echo "restic 0.14's Azure SDK reaches the emulator only at 127.0.0.1:10000" ;;
  esac
}

tv() { sed -n "s/^[[:space:]]*$1: //p" "$2"; }
wall_of() { # "h:mm:ss" or "m:ss.ss" -> seconds
  awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"
}

run_step() { # run tool kind store step input-or-empty
  local r=$1 tool=$2 kind=$3 store=$4 step=$5 input=$6 base tf status=ok load1 t0 t1 wall
  command_for "$tool" "$kind" "$store" "$step"
  base=$RUN_DIR/$step
  tf=$base.time
  load1=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  if [[ -n $input ]]; then
    "${ENV_CMD[@]}" /usr/bin/time -v -o "$tf" "${CMD[@]}" <"$input" >"$base.out" 2>"$base.err" || status=FAIL
  else
    "${ENV_CMD[@]}" /usr/bin/time -v -o "$tf" "${CMD[@]}" </dev/null >/dev/null 2>"$base.err" || status=FAIL
  fi
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc)
  local stored=- objects=-
  if [[ $step == push-* ]]; then read -r stored objects < <(du_store "$kind" "$store"); fi
  printf '%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$tool" "$kind" "$step" "$status" \
    "$wall" "$(tv 'User time (seconds)' "$tf")" "$(tv 'System time (seconds)' "$tf")" \
    "$(tv 'Maximum resident set size (kbytes)' "$tf")" "$stored" "$objects" "$(emu_hwm)" "$load1" >>"$TSV"
  log "r$r $tool/$kind $step: $status ${wall}s stored=$stored"
  if [[ $status != ok ]]; then tail -n 5 "$base.err" >&2; fi
  [[ $status == ok ]]
}

# ---------------------------------------------------------------- the run

LOAD_BEFORE=$(uptime)
log "kando: $KANDO_BIN ($("$KANDO_BIN" --version 2>&1 | head -1))"
log "data: $D1 ($S1 B), $D2 ($S2 B); $RUNS run(s); tools: $TOOLS; emulators: $EMULATORS"
log "load before: $LOAD_BEFORE"
SHA2=
read -ra TOOL_LIST <<<"$TOOLS"
for ((r = 1; r <= RUNS; r++)); do
  # rotate the tool order per run, so that drifting load hits every tool alike
  order=("${TOOL_LIST[@]:$(((r - 1) % ${#TOOL_LIST[@]}))}" "${TOOL_LIST[@]:0:$(((r - 1) % ${#TOOL_LIST[@]}))}")
  for kind in $EMULATORS; do
    for tool in "${order[@]}"; do
      why=$(unreachable "$tool" "$kind")
      if [[ -n $why ]]; then
        [[ $r -eq 1 ]] && log "skip $tool/$kind: $why"
        continue
      fi
      RUN_DIR=$LOGS/r$r-$tool-$kind
      mkdir -p "$RUN_DIR"
      start_emulator "$kind" "$RUN_DIR/emulator"
      store=bench-r$r-${tool//[^a-z]/}
      mk_store "$kind" "$store"
      if [[ $tool == restic ]]; then
        command_for restic "$kind" "$store" init
        "${ENV_CMD[@]}" "${CMD[@]}" >"$RUN_DIR/init.out" 2>&1 || { cat "$RUN_DIR/init.out" >&2; die "restic init failed"; }
      fi
      ok=1
      run_step "$r" "$tool" "$kind" "$store" push-day1 "$D1" || ok=0
      [[ $ok == 1 ]] && { run_step "$r" "$tool" "$kind" "$store" push-day2 "$D2" || ok=0; }
      [[ $ok == 1 ]] && { run_step "$r" "$tool" "$kind" "$store" pull "" || ok=0; }
      if [[ $ok == 1 && $r -eq 1 ]]; then
        [[ -n $SHA2 ]] || SHA2=$(sha256sum <"$D2" | cut -d' ' -f1)
        command_for "$tool" "$kind" "$store" pull
        got=$("${ENV_CMD[@]}" "${CMD[@]}" </dev/null 2>/dev/null | sha256sum | cut -d' ' -f1)
        if [[ $got == "$SHA2" ]]; then log "r$r $tool/$kind: restore check ok"; else
          log "r$r $tool/$kind: RESTORE CHECK FAILED ($got != $SHA2)"; echo "$tool $kind" >>"$LOGS/restore-failed"; fi
      fi
      echo "$tool $kind $(emu_hwm)" >>"$LOGS/emulator-hwm"
      stop_emulator
    done
  done
done
LOAD_AFTER=$(uptime)
log "load after: $LOAD_AFTER"

# ---------------------------------------------------------------- report

report() {
  python3 - "$TSV" "$S1" "$S2" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
size = {"push-day1": int(sys.argv[2]), "push-day2": int(sys.argv[3]), "pull": int(sys.argv[3])}
MiB = 1 << 20
med = lambda xs: statistics.median(xs) if xs else float("nan")
keys = []
for r in rows:
    k = (r["tool"], r["emulator"], r["step"])
    if k not in keys:
        keys.append(k)
print("| tool | emulator | step | wall s | MiB/s | CPU s | peak RSS MiB | stored MiB (total) | added MiB | emulator peak RSS MiB | load1 | runs ok |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in keys:
    rs = [r for r in rows if (r["tool"], r["emulator"], r["step"]) == k]
    ok = [r for r in rs if r["status"] == "ok"]
    wall = med([float(r["wall_s"]) for r in ok])
    cpu = med([float(r["user_s"]) + float(r["sys_s"]) for r in ok])
    rss = med([int(r["rss_kb"]) / 1024 for r in ok])
    emu = med([int(r["emu_hwm_kb"]) / 1024 for r in ok])
    load = med([float(r["load1"]) for r in ok])
    stored = added = "—"
    if k[2].startswith("push") and ok:
        stored = "%.1f" % med([int(r["stored_bytes"]) / MiB for r in ok])
        if k[2] == "push-day1":
            added = stored
        else:
            prev = {r["run"]: int(r["stored_bytes"]) for r in rows
                    if (r["tool"], r["emulator"], r["step"]) == (k[0], k[1], "push-day1") and r["status"] == "ok"}
            added = "%.1f" % med([(int(r["stored_bytes"]) - prev[r["run"]]) / MiB for r in ok if r["run"] in prev])
    print(f"| {k[0]} | {k[1]} | {k[2]} | {wall:.2f} | {size[k[2]] / MiB / wall:.1f} | {cpu:.2f} | {rss:.0f} | {stored} | {added} | {emu:.0f} | {load:.2f} | {len(ok)}/{len(rs)} |")
PY
}
{
  echo "Runs: $RUNS (medians). Data: pg-day1.sql $S1 B, pg-day2.sql $S2 B. kando: $("$KANDO_BIN" --version 2>&1 | head -1). restic: $(restic version 2>/dev/null || echo none)."
  echo
  report
  echo
  for tool in $TOOLS; do for kind in $EMULATORS; do
    why=$(unreachable "$tool" "$kind"); [[ -z $why ]] || echo "- $tool/$kind not run: $why"
  done; done
  [[ ! -e $LOGS/restore-failed ]] || echo "- RESTORE CHECK FAILED: $(tr '\n' ';' <"$LOGS/restore-failed")"
  echo "- load before: $LOAD_BEFORE"
  echo "- load after:  $LOAD_AFTER"
  echo "- raw numbers: $TSV"
} | tee "$LOGS/report.md"
[[ -z ${OUT:-} ]] || cp "$LOGS/report.md" "$OUT"
