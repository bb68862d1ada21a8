#!/usr/bin/env bash
# Run a real S3-compatible server on 127.0.0.1 for tests and benchmarks.
#
#   scripts/s3/server.sh start <rgw|s3s-fs|moto> <workdir>
#   scripts/s3/server.sh stop <workdir>
#   scripts/s3/server.sh mkbucket <workdir> <bucket>
#
# start prints S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_KIND
# (KEY=VALUE, one per line) on stdout and writes the same lines to <workdir>/env.
# All state, logs and pid files live under <workdir>; nothing else goes to stdout.
# Tunables: S3_START_TIMEOUT (seconds per wait, default 60),
#           S3_RGW_MEM_BYTES (RGW memstore size, default 2 GiB).
# See scripts/s3/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START_TIMEOUT=${S3_START_TIMEOUT:-60}
RGW_MEM_BYTES=${S3_RGW_MEM_BYTES:-$((2 * 1024 * 1024 * 1024))}
REGION=us-east-1

log() { printf 'server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" >&2; exit 2; }

# Shared daemon helpers (pid files, readiness, stop, log tails).
# shellcheck source=../lib/daemons.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/daemons.sh"

# ---------------------------------------------------------------- helpers

# Print N distinct free loopback ports. All sockets are held open until every
# port is chosen so the N ports differ; another process may still grab one
# before the server binds it (small race, the start then fails loudly).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Random credentials; moto ignores them, s3s-fs and RGW check signatures.
random_hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }

# True once anything answers HTTP on the port (any status, even 403).
http_up() {
  python3 - "$1" <<'PY' 2>/dev/null
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
c.request("GET", "/")
c.getresponse()
PY
}

# Timestamped progress line in log/setup.log (start-up timings for the README).
stage() { printf '%s [server.sh] %s\n' "$(date +%T.%N | cut -c1-12)" "$*" >>"$W/log/setup.log"; }

# Run a set-up command with its output into log/setup.log.
logged() { "$@" >>"$W/log/setup.log" 2>&1; }

# spawn <name> <command...>: start a daemon in the background in its own
# session (so Ctrl-C or a test harness killing our process group leaves it to
# `stop`), stdout/stderr into log/<name>.out, pid into pids/<name>.pid.
# It runs in the foreground from its own point of view, so $! is its pid.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$W/log/$name.out" 2>&1 &
  echo "$! $(start_time $!)" >"$W/pids/$name.pid"
  echo $!
}

write_env() {
  local port=$1 access=$2 secret=$3 kind=$4
  printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\nS3_REGION=%s\nS3_KIND=%s\n' \
    "$port" "$access" "$secret" "$REGION" "$kind" >"$W/env.tmp"
  mv "$W/env.tmp" "$W/env"
  cat "$W/env"
}

# ---------------------------------------------------------------- moto

start_moto() {
  local port access secret pid
  command -v moto_server >/dev/null || die "moto_server not found: run scripts/s3/install.sh moto"
  port=$(free_ports 1)
  # moto accepts any key; hand out fixed ones so logs read clearly.
  access=test secret=test
  pid=$(spawn moto moto_server -H 127.0.0.1 -p "$port")
  wait_for "moto" "$pid" http_up "$port" || return 1
  write_env "$port" "$access" "$secret" moto
}

# ---------------------------------------------------------------- s3s-fs

find_s3s_fs() {
  command -v s3s-fs 2>/dev/null && return 0
  # cargo install puts it here, which is not always on PATH.
  local c=${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs
  [ -x "$c" ] && echo "$c"
}

start_s3s_fs() {
  local bin port access secret pid
  bin=$(find_s3s_fs) || die "s3s-fs not found: run scripts/s3/install.sh s3s-fs"
  port=$(free_ports 1)
  access=$(random_hex 10) secret=$(random_hex 20)
  mkdir -p "$W/data/fs"
  pid=$(spawn s3s-fs "$bin" --host 127.0.0.1 --port "$port" \
    --access-key "$access" --secret-key "$secret" "$W/data/fs")
  wait_for "s3s-fs" "$pid" http_up "$port" || return 1
  write_env "$port" "$access" "$secret" s3s-fs
}

# ---------------------------------------------------------------- rgw

# Single-node Ceph: one mon, one memstore OSD, one radosgw; cephx and msgr2
# off; every path under $W/data/ceph so several instances can coexist.
rgw_conf() {
  local fsid=$1 mon_port=$2 rgw_port=$3 d=$W/data/ceph
  cat <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $d/run
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
log file = $W/log/\$name.log
crash dir = $d/crash
keyring = $d/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon warn on pool no app = false
mon warn on insecure global id reclaim allowed = false
# The mon refuses to start or shuts down below 5 % free disk by default (CI hit it
# with 3.3 GiB free of 252); the state is in memory, so never stop for disk.
mon data avail warn = 0
mon data avail crit = -1

[mon]
mon data = $d/mon/\$name
# radosgw's first start creates six pools, one mon proposal each; the default
# 1 s batching interval made that 9 s of a 13 s start.
paxos propose interval = 0.05

[osd]
osd data = $d/osd/\$name
osd objectstore = memstore
memstore device bytes = $RGW_MEM_BYTES
osd crush update on start = false
osd class update on start = false
# stop TERMs every daemon at once: do not wait 5 s for a mon that is gone.
osd mon shutdown timeout = 0.1
# Keep a 2-core machine usable.
osd op num shards = 2
osd op num threads per shard = 1

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $d/rgw
# SSE-KMS for kando's --sse tests: RGW's built-in "testing" KMS with fixed keys, and SSE
# allowed over plain HTTP on loopback.
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo= testkey-2=aWIKTWFrZWZpbGUKbWFuCm91dApzcmMKVGVzdGluZwo=
EOF
}

ceph_cli() { ceph -c "$W/ceph.conf" --connect-timeout 10 "$@"; }
osd_up() { ceph_cli osd stat 2>/dev/null | grep -q '1 up'; }

start_rgw() {
  local mon_port rgw_port fsid osd_uuid access secret pid d=$W/data/ceph
  command -v radosgw >/dev/null || die "radosgw not found: run scripts/s3/install.sh rgw"
  [ "$(id -u)" = 0 ] || die "rgw: run as root (ceph daemons drop to root explicitly)"
  read -r mon_port rgw_port < <(free_ports 2)
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  mkdir -p "$d/run" "$d/crash" "$d/mon/mon.a" "$d/osd/osd.0" "$d/rgw/ceph-rgw"
  rgw_conf "$fsid" "$mon_port" "$rgw_port" >"$W/ceph.conf"
  stage "rgw: mon port $mon_port, S3 port $rgw_port"
  local -a C=(-c "$W/ceph.conf")
  local -a AS_ROOT=(--setuser root --setgroup root)

  # Monitor: keyring and monmap are needed by --mkfs even with cephx off.
  logged ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *'
  logged monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$d/monmap"
  logged ceph-mon "${C[@]}" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" "${AS_ROOT[@]}"
  pid=$(spawn ceph-mon ceph-mon "${C[@]}" -f -i a "${AS_ROOT[@]}")
  wait_for "ceph-mon" "$pid" ceph_cli mon stat || return 1
  stage "ceph-mon answers"

  # OSD on memstore.
  logged ceph_cli osd new "$osd_uuid"
  logged ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" "${AS_ROOT[@]}"
  logged ceph_cli osd crush add osd.0 1.0 root=default
  pid=$(spawn ceph-osd ceph-osd "${C[@]}" -f -i 0 "${AS_ROOT[@]}")
  wait_for "ceph-osd" "$pid" osd_up || return 1
  stage "ceph-osd up"

  # Gateway; it creates its pools on first start, which is most of its wait.
  pid=$(spawn radosgw radosgw "${C[@]}" -f -n client.rgw "${AS_ROOT[@]}")
  wait_for "radosgw" "$pid" http_up "$rgw_port" || return 1
  stage "radosgw answers HTTP"

  access=$(random_hex 10) secret=$(random_hex 20)
  logged radosgw-admin "${C[@]}" user create --uid test --display-name test \
    --access-key "$access" --secret-key "$secret"
  stage "user created"
  write_env "$rgw_port" "$access" "$secret" rgw
}

# ---------------------------------------------------------------- commands

# prepare_workdir (scripts/lib/daemons.sh) marks our directories with this file.
MARKER=.kando-s3-workdir

cmd_start() {
  local kind=$1
  case $kind in rgw | s3s-fs | moto) ;; *) die "unknown kind '$kind' (rgw, s3s-fs or moto)" ;; esac
  prepare_workdir "$W/ceph.conf"
  log "starting $kind in $W (logs in $W/log)"
  local fn=start_${kind//-/_}
  # Run in a subshell with errexit on: bash ignores `set -e` inside an `if`
  # condition, so take the status by hand instead.
  local rc=0
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
}

cmd_stop() {
  [ -d "$W/pids" ] || return 0
  local p=$W/pids
  # radosgw first: its shutdown talks to the cluster and hangs (alarm 120 s)
  # when the mon and OSD are already gone. Then the OSD and the mon together:
  # the state is in memory, so an orderly one-by-one shutdown buys nothing.
  stop_pids "$p/radosgw.pid" "$p/s3s-fs.pid" "$p/moto.pid"
  stop_pids "$p/ceph-osd.pid" "$p/ceph-mon.pid"
  stop_pids "$p"/*.pid # anything else a future start may add
  rm -f "$W/env"
}

cmd_mkbucket() {
  local bucket=$1
  [ -f "$W/env" ] || die "$W/env not found: start a server first"
  # mkbucket is idempotent: a second create gets 200 from RGW and moto but
  # 409 BucketAlreadyExists from s3s-fs, so 409 counts as success.
  python3 "$HERE/s3req.py" --env "$W/env" --expect 200,409 PUT "/$bucket" >"$W/log/mkbucket.err" 2>&1 \
    || { cat "$W/log/mkbucket.err" >&2; die "could not create bucket '$bucket'"; }
}

main() {
  [ $# -ge 2 ] || usage
  local cmd=$1
  case $cmd in
    start) [ $# -eq 3 ] || usage; W=$(realpath -m "$3"); cmd_start "$2" ;;
    stop) [ $# -eq 2 ] || usage; W=$(realpath -m "$2"); cmd_stop ;;
    mkbucket) [ $# -eq 3 ] || usage; W=$(realpath -m "$2"); cmd_mkbucket "$3" ;;
    *) usage ;;
  esac
}

main "$@"
