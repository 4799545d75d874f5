#!/usr/bin/env bash
# pgbouncer.sh — installs and runs PostgreSQL 15 with PgBouncer 1.18 in
# front of it, on loopback, for himaplan's pgbouncer provider tests and the
# demo. It owns one run directory (a PostgreSQL cluster, pgbouncer.ini,
# userlist.txt, logs and pid files) and the two daemons started from it; it
# must not touch the system's own clusters or services, and both daemons
# listen on 127.0.0.1 only.
#
# Usage:
#   pgbouncer.sh install   apt-get postgresql + pgbouncer (skipped when present)
#   pgbouncer.sh start     initdb (first time), start postgres and pgbouncer,
#                          print `export ...` lines for eval
#   pgbouncer.sh stop      stop both daemons started from the run directory
#   pgbouncer.sh env       print the export lines again
#
# Environment: HIMAPLAN_RUN (default /tmp/himaplan-run) — the run directory
# is $HIMAPLAN_RUN/pgbouncer; PG_PORT (default 55432) and PGBOUNCER_PORT
# (default 56432) choose the loopback ports.
#
# Both daemons run as the `postgres` user: PgBouncer refuses to run as root,
# and the files it reads (pgbouncer.ini, userlist.txt) are owned by it with
# mode 0640 so that a provider rewriting them must keep owner and mode.
set -euo pipefail

RUN_ROOT="${HIMAPLAN_RUN:-/tmp/himaplan-run}"
RUN="$RUN_ROOT/pgbouncer"
PG_PORT="${PG_PORT:-55432}"
PGB_PORT="${PGBOUNCER_PORT:-56432}"
PGBIN="/usr/lib/postgresql/15/bin"
DATA="$RUN/pgdata"
INI="$RUN/pgbouncer.ini"
USERLIST="$RUN/userlist.txt"
ADMIN_PASSWORD="admin-secret"
APP_PASSWORD="app-secret"

die() { echo "pgbouncer.sh: $*" >&2; exit 1; }

as_pg() { runuser -u postgres -- "$@"; }

install() {
  if [ -x "$PGBIN/postgres" ] && command -v pgbouncer >/dev/null 2>&1; then
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends postgresql pgbouncer >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends postgresql pgbouncer >&2; } \
    || die "apt-get could not install postgresql and pgbouncer"
}

check_port() {
  case "$1" in ''|*[!0-9]*) die "port must be a number, got '$1'";; esac
}

print_env() {
  echo "export PG_PORT=$PG_PORT PGBOUNCER_PORT=$PGB_PORT"
  echo "export PGBOUNCER_INI=$INI PGBOUNCER_USERLIST=$USERLIST PGBOUNCER_RUN=$RUN"
  echo "export PGBOUNCER_ADMIN_URL=postgres://admin:$ADMIN_PASSWORD@127.0.0.1:$PGB_PORT/pgbouncer"
  echo "export PGBOUNCER_APP_URL=postgres://app:$APP_PASSWORD@127.0.0.1:$PGB_PORT/appdb"
}

pg_running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

pgb_running() { [ -f "$RUN/pgbouncer.pid" ] && kill -0 "$(cat "$RUN/pgbouncer.pid")" 2>/dev/null; }

start_postgres() {
  if [ ! -f "$DATA/PG_VERSION" ]; then
    # Trust on loopback keeps the test cluster simple: PgBouncer checks the
    # clients' passwords itself (auth_type md5 against userlist.txt).
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync >"$RUN/initdb.log" 2>&1 \
      || { cat "$RUN/initdb.log" >&2; die "initdb failed"; }
  fi
  if ! pg_running; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$RUN/postgres.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$RUN -c fsync=off" start >&2 \
      || { tail -n 20 "$RUN/postgres.log" >&2; die "postgres did not start on 127.0.0.1:$PG_PORT"; }
  fi
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "select 1 from pg_roles where rolname='app'" postgres | grep -q 1; then
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create role app login password '$APP_PASSWORD'" postgres >&2
  fi
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "select 1 from pg_database where datname='appdb'" postgres | grep -q 1; then
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create database appdb owner app" postgres >&2
  fi
}

write_files() {
  # Written afresh on every start so a test always begins from the same
  # configuration, whatever a previous run's provider left behind.
  cat >"$INI" <<EOF
[databases]
appdb = host=127.0.0.1 port=$PG_PORT dbname=appdb user=app pool_size=20

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $RUN
auth_type = md5
auth_file = $USERLIST
admin_users = admin
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $RUN/pgbouncer.log
pidfile = $RUN/pgbouncer.pid
EOF
  cat >"$USERLIST" <<EOF
"admin" "$ADMIN_PASSWORD"
"app" "$APP_PASSWORD"
EOF
  chown postgres:postgres "$INI" "$USERLIST"
  chmod 0640 "$INI" "$USERLIST"
}

start() {
  check_port "$PG_PORT"; check_port "$PGB_PORT"
  install
  mkdir -p "$RUN"
  chown postgres:postgres "$RUN"
  # postgres must be able to reach the run directory through its parents.
  chmod 0755 "$RUN_ROOT" "$RUN"
  start_postgres
  if ! pgb_running; then
    write_files
    as_pg pgbouncer -d "$INI" >&2 || { tail -n 20 "$RUN/pgbouncer.log" >&2 || true; die "pgbouncer did not start"; }
  fi
  local i
  for i in $(seq 1 50); do
    if PGPASSWORD="$ADMIN_PASSWORD" psql -h 127.0.0.1 -p "$PGB_PORT" -U admin -Atqc "show version" pgbouncer >/dev/null 2>&1; then
      print_env
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$RUN/pgbouncer.log" >&2 || true
  die "pgbouncer did not answer on 127.0.0.1:$PGB_PORT within 5 s (log: $RUN/pgbouncer.log)"
}

stop() {
  if pgb_running; then
    local pid
    pid="$(cat "$RUN/pgbouncer.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if pg_running; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) die "usage: pgbouncer.sh install | start | stop | env" ;;
esac
