#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on loopback for the tests and prints its URL:
#
#     export MICRO_TEST_POSTGRES_URL="$(scripts/start-postgres.sh)"
#
# Installs PostgreSQL from Debian if it is missing (needs root), runs the server as a non-root
# user (`postgres` when called as root) with its data in $MICRO_PG_DIR, and creates the
# database. Idempotent: a second call reuses the running server. Logs go to stderr, so only
# the URL is on stdout. Stop it with: pg_ctl -D "$MICRO_PG_DIR" stop (as that user).
set -euo pipefail

DIR=${MICRO_PG_DIR:-/tmp/micro-postgres}
PORT=${MICRO_PG_PORT:-54329}
DB=${MICRO_PG_DB:-micro_test}
log() { echo "start-postgres: $*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN=$(pg_bin)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "PostgreSQL not found: installing it from Debian"
    if [ "$(id -u)" -ne 0 ]; then
        log "installing needs root: run as root, or apt-get install -y postgresql first"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN=$(pg_bin)
fi

# The server refuses to run as root: run it as `postgres` when we are root.
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=postgres
    id "$RUN_AS" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh "$RUN_AS"
    as_user() { runuser -u "$RUN_AS" -- "$@"; }
else
    RUN_AS=$(id -un)
    as_user() { "$@"; }
fi

mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$DIR" && chmod 700 "$DIR"

if [ ! -f "$DIR/PG_VERSION" ]; then
    log "creating a cluster in $DIR"
    as_user "$BIN/initdb" -D "$DIR" -U postgres -A trust --no-instructions >/dev/null
fi

if as_user "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
    log "server already running in $DIR"
else
    log "starting the server on 127.0.0.1:$PORT"
    as_user "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >&2 || {
        log "the server did not start; its log:"
        tail -n 20 "$DIR/server.log" >&2 || true
        exit 1
    }
fi

psql_() { as_user "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc "$1"; }
if [ "$(psql_ "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    psql_ "CREATE DATABASE $DB" >/dev/null
fi

URL="postgres://postgres@127.0.0.1:$PORT/$DB"
log "ready: $URL"
echo "$URL"
