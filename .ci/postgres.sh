#!/usr/bin/env bash
# A throwaway local PostgreSQL cluster for the PostgreSQL store tests.
#
#   .ci/postgres.sh [start]   init (if needed) and start the cluster, create the database, and
#                             print its URL on stdout (everything else goes to stderr):
#                               export SECURE_EXPORT_TEST_PG_URL="$(.ci/postgres.sh)"
#   .ci/postgres.sh stop      stop the cluster (the data directory is kept for a fast restart)
#   .ci/postgres.sh destroy   stop it and delete the data directory
#   .ci/postgres.sh url       print the URL without starting anything
#
# Listens on 127.0.0.1 only, on a non-default port, with its unix socket under /tmp. Trust
# authentication on loopback: a test fixture, never a deployment. initdb/pg_ctl refuse to run as
# root, so as root the server commands run as the `postgres` user.
#
# Environment (all optional):
#   SE_PG_BIN      server binaries      (default: newest /usr/lib/postgresql/*/bin, else PATH)
#   SE_PG_DATA     data directory       (default: /tmp/secure-export-pg/data)
#   SE_PG_PORT     TCP port             (default: 55432)
#   SE_PG_DB       database name        (default: secure_export_test)
#   SE_PG_OS_USER  OS user that runs the server when invoked as root (default: postgres)
set -euo pipefail

PORT="${SE_PG_PORT:-55432}"
DATA="${SE_PG_DATA:-/tmp/secure-export-pg/data}"
DB="${SE_PG_DB:-secure_export_test}"
OS_USER="${SE_PG_OS_USER:-postgres}"
BASE="$(dirname "$DATA")"
SOCK="$BASE/socket"
LOG="$BASE/server.log"
URL="postgres://postgres@127.0.0.1:${PORT}/${DB}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "SE_PG_PORT must be a port number, got '$PORT'"
[[ "$DB" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "SE_PG_DB must be a plain identifier, got '$DB'"

find_bin() {
    if [[ -n "${SE_PG_BIN:-}" ]]; then
        echo "$SE_PG_BIN"
        return
    fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/pg_ctl" ]]; then
        echo "$d"
        return
    fi
    local p
    p="$(command -v pg_ctl || true)"
    [[ -n "$p" ]] || die "no PostgreSQL server binaries found (set SE_PG_BIN)"
    dirname "$p"
}

BIN="$(find_bin)"
[[ -x "$BIN/pg_ctl" && -x "$BIN/initdb" ]] || die "pg_ctl/initdb not found in $BIN"

# Runs a command as the server's OS user (as root) or as ourselves (otherwise).
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        id "$OS_USER" >/dev/null 2>&1 || die "OS user $OS_USER does not exist (set SE_PG_OS_USER)"
        # runuser/su with a clean argument vector; no shell re-parsing of our arguments.
        if command -v runuser >/dev/null 2>&1; then
            runuser -u "$OS_USER" -- "$@"
        else
            su -s /bin/sh "$OS_USER" -c '"$0" "$@"' -- "$@"
        fi
    else
        "$@"
    fi
}

prepare_dirs() {
    mkdir -p "$BASE" "$SOCK"
    if [[ "$(id -u)" == 0 ]]; then
        chown "$OS_USER" "$BASE" "$SOCK"
    fi
    chmod 700 "$BASE"
}

is_running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_cmd() {
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"
}

start() {
    if ! is_running; then
        prepare_dirs
        if [[ ! -f "$DATA/PG_VERSION" ]]; then
            log "initdb $DATA"
            rm -rf "$DATA"
            as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C \
                --no-sync >/dev/null
        fi
        log "starting on 127.0.0.1:$PORT (log: $LOG)"
        # fsync off and no synchronous commit: a throwaway test cluster, speed over durability.
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 -s start -o \
            "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            || { tail -n 20 "$LOG" >&2 || true; die "pg_ctl start failed"; }
    fi
    local exists
    exists="$(psql_cmd -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")"
    if [[ "$exists" != 1 ]]; then
        log "creating database $DB"
        psql_cmd -d postgres -c "CREATE DATABASE \"$DB\""
    fi
    echo "$URL"
}

stop() {
    if is_running; then
        log "stopping"
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -s stop
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    destroy) stop; rm -rf "$BASE" ;;
    url) echo "$URL" ;;
    *) die "usage: $0 [start|stop|destroy|url]" ;;
esac
