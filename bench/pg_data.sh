#!/usr/bin/env bash
# Make two "daily" plain-SQL pg_dump files from a throwaway PostgreSQL cluster.
#
#   bench/pg_data.sh WORKDIR [SCALE] [DOCS_ROWS] [TRANSACTIONS]
#
# Writes WORKDIR/data/pg-day1.sql and WORKDIR/data/pg-day2.sql (kept for reuse; delete them
# to regenerate). The cluster lives in WORKDIR/pg, listens only on a unix socket there, runs
# with fsync off, and is stopped and deleted at the end. As root it runs as the system user
# `kbench` (created if missing) because initdb refuses to run as root.
#
# day1: pgbench -i -s SCALE (default 40: 4 M pgbench_accounts rows) plus a table `docs` of
#       DOCS_ROWS (default 2.5 M) JSON rows.
# day2: the "next day": TRANSACTIONS (default 1000) pgbench TPC-B transactions (each updates
#       one random pgbench_accounts row: uniformly scattered changes), 1 % of docs rows updated,
#       all among the newest 10 % (one in ten of ids > 0.9 * DOCS: recent rows are the hot ones),
#       and 1 % new docs rows inserted. PostgreSQL writes an updated row's new version
#       elsewhere (the pages are full: fillfactor 100), so in the dump an updated row leaves its
#       place and reappears near the end of its table, as in real life.
set -euo pipefail

WORK=${1:?usage: pg_data.sh WORKDIR [SCALE] [DOCS_ROWS] [TRANSACTIONS]}
SCALE=${2:-40}
DOCS=${3:-2500000}
TX=${4:-1000}
DATA_OUT=$WORK/data
DAY1=$DATA_OUT/pg-day1.sql
DAY2=$DATA_OUT/pg-day2.sql

if [[ -s $DAY1 && -s $DAY2 ]]; then
    echo "pg_data: reusing $DAY1 and $DAY2"
    exit 0
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
for b in initdb pg_ctl postgres pgbench pg_dump psql; do
    [[ -x $PGBIN/$b ]] || { echo "pg_data: $b not found under /usr/lib/postgresql/*/bin" >&2; exit 3; }
done

mkdir -p "$WORK" "$DATA_OUT"
PGDIR=$WORK/pg
rm -rf "$PGDIR"
mkdir -p "$PGDIR/sock"

AS=()
if [[ $(id -u) -eq 0 ]]; then
    if ! id kbench >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin kbench
    fi
    chown -R kbench: "$PGDIR"
    chmod o+x "$WORK"
    AS=(runuser -u kbench --)
fi

SOCK=$PGDIR/sock
PGDATA=$PGDIR/data
pg() { "${AS[@]}" "$PGBIN/$1" "${@:2}"; }
psql_() { pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -U postgres -d bench "$@"; }

stop_cluster() {
    if [[ -f $PGDATA/postmaster.pid ]]; then
        pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
trap stop_cluster EXIT

t0=$(date +%s)
echo "pg_data: initdb ($PGBIN)"
pg initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >"$PGDIR/initdb.log"
pg pg_ctl -D "$PGDATA" -l "$PGDIR/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$SOCK' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB -c shared_buffers=256MB -c maintenance_work_mem=256MB" \
    start >/dev/null
pg psql -X -q -h "$SOCK" -U postgres -d postgres -c 'create database bench'

echo "pg_data: pgbench -i -s $SCALE"
pg pgbench -i -q -s "$SCALE" -h "$SOCK" -U postgres bench 2>&1 | tail -n1
echo "pg_data: docs table, $DOCS JSON rows"
psql_ -c "create table docs as select g id, json_build_object('a',g,'b',md5(g::text),'c',now()) doc from generate_series(1,$DOCS) g" \
      -c "alter table docs add primary key (id)" -c "vacuum analyze"

echo "pg_data: pg_dump day1"
pg pg_dump -h "$SOCK" -U postgres -d bench >"$DAY1.tmp"
mv "$DAY1.tmp" "$DAY1"

echo "pg_data: next day (pgbench -t $TX, update 1 % of docs among the newest 10 %, insert 1 %)"
pg pgbench -n -c 1 -t "$TX" -h "$SOCK" -U postgres bench >"$PGDIR/pgbench-day2.log" 2>&1
psql_ -c "update docs set doc = json_build_object('a',id,'b',md5((id+1)::text),'c',now()) where id > $DOCS - $DOCS/10 and id % 10 = 3" \
      -c "insert into docs select g, json_build_object('a',g,'b',md5(g::text),'c',now()) from generate_series($DOCS+1,$DOCS+$DOCS/100) g"

echo "pg_data: pg_dump day2"
pg pg_dump -h "$SOCK" -U postgres -d bench >"$DAY2.tmp"
mv "$DAY2.tmp" "$DAY2"

stop_cluster
trap - EXIT
rm -rf "$PGDIR"
echo "pg_data: done in $(( $(date +%s) - t0 )) s: $(stat -c %s "$DAY1") and $(stat -c %s "$DAY2") bytes"
