#!/usr/bin/env bash
# Throwaway scale-out backends for tests and benchmarks: a PostgreSQL cluster
# (Debian's `postgresql` package) and an S3-compatible server (`s3s-fs` from
# crates.io, installed once under target/tools), both on spare loopback ports.
#
#   scripts/test-backends.sh start [STATE_DIR]   start both, print the env to use
#   scripts/test-backends.sh env   [STATE_DIR]   print the env again
#   scripts/test-backends.sh stop  [STATE_DIR]   stop both and delete their data
#   scripts/test-backends.sh restart-pg [STATE_DIR]
#                                    crash-stop PostgreSQL (`pg_ctl -m immediate`, no
#                                    checkpoint), wait PG_DOWN_S seconds (default 3), start it
#                                    again on the same port and data (`make soak`)
#
# DURABLE=1 keeps PostgreSQL's fsync on (for benchmarks); by default the
# throwaway cluster skips it. PG_SHARED_BUFFERS (e.g. 1GB) sizes PostgreSQL's
# buffer cache like a real deployment of a big catalogue (`make bench-search`);
# by default the cluster keeps PostgreSQL's small default (128MB), enough for tests.
# PG_EXTRA_OPTS adds `postgres` options (e.g. `-c shared_preload_libraries=pg_stat_statements`
# to profile a benchmark's statements).
# The printed lines are `export NAME=value`, ready for `eval`:
#   DATAERAI_TEST_PG_URL      postgres://postgres@127.0.0.1:PORT (no database: add /NAME)
#   DATAERAI_TEST_BUCKET      the bucket (s3s-fs: a directory under its root)
#   DATAERAI_TEST_S3_ROOT     s3s-fs's root directory (tests peek at objects as files): under
#                             STATE_DIR, or with S3_ON_TMPFS=1 under /dev/shm. s3s-fs makes some
#                             six files per object and never fsyncs, so on this machine's disk it
#                             partly measures the file system, not S3 (on ext4 without a journal
#                             every new inode skips those deleted in the last minute: 1.4-2.8 ms
#                             of its CPU per small file there, 0.7 on /dev/shm; docs/performance.md).
#                             Off by default: the tests' and benchmarks' objects stay on the disk,
#                             where a CI machine has room for them
#   AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP
#   DATAERAI_TEST_SERVER_ARGS extra `serve`/`admin` flags, with `{id}` to be
#                             replaced by a per-server id (own database + prefix)
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user and lives in a temp directory it owns. Nothing is cached
# outside the checkout except that temp directory, removed by `stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"
STATE="${2:-$ROOT/target/test-backends}"
S3S_VERSION=0.14.1
S3S_BIN="$ROOT/target/tools/bin/s3s-fs"
BUCKET=dataerai-test
ACCESS_KEY=dataerai-test
SECRET_KEY=dataerai-test-secret

log() { echo "test-backends: $*" >&2; }

spare_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT WHAT
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    log "$2 did not start listening on port $1"
    return 1
}

pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$dir" ]; then
        log "installing Debian's postgresql package"
        # A fresh machine may have no package lists yet: update once and retry.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
        dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    echo "$dir"
}

as_pg() { # run a PostgreSQL tool as the cluster owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_s3s() {
    if [ ! -x "$S3S_BIN" ]; then
        log "installing s3s-fs $S3S_VERSION into target/tools (one-off, a few minutes)"
        cargo install s3s-fs --version "$S3S_VERSION" --locked --features binary \
            --root "$ROOT/target/tools" >&2
    fi
}

print_env() {
    # shellcheck disable=SC1091
    . "$STATE/ports"
    cat <<EOF
export DATAERAI_TEST_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT
export DATAERAI_TEST_BUCKET=$BUCKET
export DATAERAI_TEST_S3_ROOT=$S3_ROOT
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_ALLOW_HTTP=true
export DATAERAI_TEST_SERVER_ARGS='--database-url postgres://postgres@127.0.0.1:$PG_PORT/t_{id} --blob-store s3://$BUCKET/{id}'
EOF
}

start() {
    if [ -f "$STATE/ports" ]; then
        log "already running (state in $STATE); stop it first"
        print_env
        return 0
    fi
    ensure_s3s
    local bin pgdata pg_port s3_port
    bin="$(pg_bin)"
    mkdir -p "$STATE"
    pgdata="$(mktemp -d /tmp/dataerai-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$pgdata"; fi
    pg_port="$(spare_port)"
    as_pg "$bin/initdb" -D "$pgdata/data" -U postgres -A trust --no-sync >"$STATE/initdb.log" 2>&1 ||
        { cat "$STATE/initdb.log" >&2; return 1; }
    # Throwaway data: no fsync, unless DURABLE=1 (benchmarks measure real
    # commits). Sockets in the data dir, TCP on loopback only.
    local opts="-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1 -c max_connections=400"
    if [ "${DURABLE:-0}" != 1 ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    if [ -n "${PG_SHARED_BUFFERS:-}" ]; then
        opts="$opts -c shared_buffers=$PG_SHARED_BUFFERS"
    fi
    if [ -n "${PG_EXTRA_OPTS:-}" ]; then
        opts="$opts $PG_EXTRA_OPTS"
    fi
    as_pg "$bin/pg_ctl" -D "$pgdata/data" -l "$pgdata/server.log" -w -t 60 start -o "$opts" >/dev/null
    {
        echo "PG_BIN=$bin"
        echo "PG_DIR=$pgdata"
        echo "PG_PORT=$pg_port"
        echo "PG_OPTS='$opts'"
    } >"$STATE/ports.tmp"

    s3_port="$(spare_port)"
    local s3_root="$STATE/s3"
    if [ "${S3_ON_TMPFS:-0}" = 1 ]; then
        s3_root="$(mktemp -d /dev/shm/dataerai-s3.XXXXXX)"
    fi
    mkdir -p "$s3_root/$BUCKET"
    nohup "$S3S_BIN" --host 127.0.0.1 --port "$s3_port" --access-key "$ACCESS_KEY" \
        --secret-key "$SECRET_KEY" "$s3_root" >"$STATE/s3s-fs.log" 2>&1 &
    echo "S3_PID=$!" >>"$STATE/ports.tmp"
    echo "S3_ROOT=$s3_root" >>"$STATE/ports.tmp"
    echo "S3_PORT=$s3_port" >>"$STATE/ports.tmp"
    mv "$STATE/ports.tmp" "$STATE/ports"
    wait_port "$s3_port" s3s-fs
    log "PostgreSQL on 127.0.0.1:$pg_port ($pgdata), s3s-fs on 127.0.0.1:$s3_port ($s3_root)"
    print_env
}

stop() {
    if [ ! -f "$STATE/ports" ]; then
        log "nothing running (no $STATE/ports)"
        return 0
    fi
    # shellcheck disable=SC1091
    . "$STATE/ports"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    kill "$S3_PID" 2>/dev/null || true
    rm -rf "${S3_ROOT:-$STATE/s3}" "$STATE"
    log "stopped"
}

restart_pg() {
    if [ ! -f "$STATE/ports" ]; then
        log "nothing running (no $STATE/ports)"
        return 1
    fi
    # shellcheck disable=SC1091
    . "$STATE/ports"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null
    sleep "${PG_DOWN_S:-3}"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start -o "$PG_OPTS" >/dev/null
    log "PostgreSQL restarted on 127.0.0.1:$PG_PORT"
}

case "$cmd" in
    start) start ;;
    restart-pg) restart_pg ;;
    stop) stop ;;
    env) print_env ;;
    *)
        echo "usage: $0 start|stop|env|restart-pg [STATE_DIR]" >&2
        exit 2
        ;;
esac
