#!/usr/bin/env bash
# Run a cloud-storage emulator on 127.0.0.1 for tests.
#
#   scripts/emulators/server.sh start <azurite|fake-gcs> <workdir>
#   scripts/emulators/server.sh stop <workdir>
#
# start prints KEY=VALUE lines on stdout and writes the same lines to <workdir>/env:
#   azurite:  AZURE_ENDPOINT=http://127.0.0.1:PORT/devstoreaccount1, AZURE_ACCOUNT,
#             AZURE_KEY (the well-known devstoreaccount1 key), EMULATOR_KIND=azurite
#   fake-gcs: GCS_ENDPOINT=http://127.0.0.1:PORT, EMULATOR_KIND=fake-gcs
# All state (in memory), logs and pid files live under <workdir>; nothing else goes to
# stdout. Tunable: EMULATOR_START_TIMEOUT (seconds, default 30).
# Install first with scripts/emulators/install.sh. See scripts/emulators/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START_TIMEOUT=${EMULATOR_START_TIMEOUT:-30}
# Azurite's fixed development account (public, documented by Microsoft).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { printf 'server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" >&2; exit 2; }

# Shared daemon helpers (pid files, readiness, stop, log tails).
# shellcheck source=../lib/daemons.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/daemons.sh"

# ---------------------------------------------------------------- helpers

# A free loopback port (released again before the server binds it: small race, the start
# then fails loudly).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http_ok <url> <status...>: true once GET <url> answers with one of the statuses.
http_ok() {
  python3 - "$@" <<'PY' 2>/dev/null
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
c.request("GET", u.path + ("?" + u.query if u.query else ""))
sys.exit(0 if str(c.getresponse().status) in sys.argv[2:] else 1)
PY
}

# spawn <name> <command...>: start a daemon in the background in its own session (so a
# test harness killing our process group leaves it to `stop`), with data/ as its working
# directory, stdout/stderr into log/<name>.out, "pid start-time" into pids/<name>.pid.
spawn() {
  local name=$1
  shift
  (cd "$W/data" && exec setsid "$@" </dev/null >"$W/log/$name.out" 2>&1) &
  echo "$! $(start_time $!)" >"$W/pids/$name.pid"
  echo $!
}

# write_env KEY=VALUE...: into <workdir>/env (atomically) and on stdout.
write_env() {
  printf '%s\n' "$@" >"$W/env.tmp"
  mv "$W/env.tmp" "$W/env"
  cat "$W/env"
}

# The installed binary of a kind, from install.sh (which owns the pinned versions).
installed() {
  "$HERE/install.sh" --where "$1" 2>/dev/null \
    || die "$1 is not installed: run scripts/emulators/install.sh $1"
}

# ---------------------------------------------------------------- azurite

start_azurite() {
  local bin port pid
  bin=$(installed azurite)
  port=$(free_port)
  # --inMemoryPersistence: nothing on disk (it refuses --location alongside, so the
  # working directory, data/, is where anything stray would go). --disableTelemetry: it
  # would otherwise reach the internet. --skipApiVersionCheck: SDKs newer than 3.35 send
  # x-ms-version values it does not know. --loose: ignore headers it does not support.
  # --disableProductStyleUrl: the account is always the first path segment.
  pid=$(spawn azurite "$bin" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence \
    --disableTelemetry --skipApiVersionCheck --loose --silent --disableProductStyleUrl)
  # Any answer from the blob service: GET / is 400 InvalidQueryParameterValue.
  wait_for azurite "$pid" http_ok "http://127.0.0.1:$port/" 200 400 403 || return 1
  write_env "AZURE_ENDPOINT=http://127.0.0.1:$port/$AZ_ACCOUNT" "AZURE_ACCOUNT=$AZ_ACCOUNT" \
    "AZURE_KEY=$AZ_KEY" "EMULATOR_KIND=azurite"
}

# ---------------------------------------------------------------- fake-gcs-server

start_fake_gcs() {
  local bin port pid
  bin=$(installed fake-gcs)
  port=$(free_port)
  # -backend memory: nothing on disk. No -data (it would load objects from a directory) and
  # no -event.* (Pub/Sub notifications, the only outbound traffic it can make); the default
  # -public-host storage.googleapis.com only matches Host headers, it is never contacted.
  # -log-level warn: info logs a line per request.
  pid=$(spawn fake-gcs "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
    -external-url "http://127.0.0.1:$port" -log-level "${FAKE_GCS_LOG_LEVEL:-warn}")
  wait_for fake-gcs "$pid" http_ok "http://127.0.0.1:$port/storage/v1/b" 200 || return 1
  write_env "GCS_ENDPOINT=http://127.0.0.1:$port" "EMULATOR_KIND=fake-gcs"
}

# ---------------------------------------------------------------- commands

# prepare_workdir (scripts/lib/daemons.sh) marks our directories with this file.
MARKER=.kando-emulator-workdir

cmd_start() {
  local kind=$1
  case $kind in azurite | fake-gcs) ;; *) die "unknown kind '$kind' (azurite or fake-gcs)" ;; esac
  prepare_workdir
  log "starting $kind in $W (logs in $W/log)"
  local fn=start_${kind//-/_} rc=0 t0=$SECONDS
  # Subshell with errexit on: bash ignores `set -e` inside an `if` condition.
  set +e
  (set -e; "$fn")
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    log "$kind failed to start"
    dump_logs
    cmd_stop >/dev/null 2>&1 || true
    exit 1
  fi
  log "$kind ready after $((SECONDS - t0)) s"
}

cmd_stop() {
  [ -d "$W/pids" ] || return 0
  stop_pids "$W"/pids/*.pid
  rm -f "$W/env"
}

main() {
  [ $# -ge 2 ] || usage
  case $1 in
    start) [ $# -eq 3 ] || usage; W=$(realpath -m "$3"); cmd_start "$2" ;;
    stop) [ $# -eq 2 ] || usage; W=$(realpath -m "$2"); cmd_stop ;;
    *) usage ;;
  esac
}

main "$@"
