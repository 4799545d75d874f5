#!/usr/bin/env bash
# nginx.sh — installs and runs nginx (Debian nginx-light) on loopback with a
# himaplan-managed upstream, plus small local HTTP backends, for the
# nginx_upstream provider's tests and the demo. It owns one run directory
# (the prefix: nginx.conf, upstream.conf, pid, logs, temp dirs, backend
# pids) and the processes started from it; it must not touch the system's
# nginx, and everything listens on 127.0.0.1 only.
#
# Usage:
#   nginx.sh install            apt-get nginx-light (skipped when present)
#   nginx.sh start [BACKENDS]   start BACKENDS (default 4) python http.server
#                               backends and nginx proxying to the first two;
#                               print `export ...` lines for eval
#   nginx.sh stop               stop nginx and the backends
#
# Environment: HIMAPLAN_RUN (default /tmp/himaplan-run) — the prefix is
# $HIMAPLAN_RUN/nginx; NGINX_PORT (default: a free port) is nginx's port.
set -euo pipefail

RUN_ROOT="${HIMAPLAN_RUN:-/tmp/himaplan-run}"
PREFIX="$RUN_ROOT/nginx"
CONF="$PREFIX/nginx.conf"
UPSTREAM="$PREFIX/upstream.conf"
PY="$(command -v /usr/bin/python3 || command -v python3)"

die() { echo "nginx.sh: $*" >&2; exit 1; }

install() {
  command -v nginx >/dev/null 2>&1 && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends nginx-light >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends nginx-light >&2; } \
    || die "apt-get could not install nginx-light"
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {
  local port="$1" i
  for i in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

print_env() {
  echo "export NGINX_PREFIX=$PREFIX NGINX_CONF=$CONF NGINX_UPSTREAM_FILE=$UPSTREAM NGINX_UPSTREAM_NAME=backend"
  echo "export NGINX_PORT=$(cat "$PREFIX/port") NGINX_BACKENDS=$(paste -sd, "$PREFIX/backends")"
}

start() {
  local count="${1:-4}"
  case "$count" in ''|*[!0-9]*) die "BACKENDS must be a number, got '$count'";; esac
  install
  if [ -f "$PREFIX/nginx.pid" ] && kill -0 "$(cat "$PREFIX/nginx.pid")" 2>/dev/null; then
    print_env
    return 0
  fi
  mkdir -p "$PREFIX/www" "$PREFIX/tmp" "$PREFIX/logs"
  echo ok >"$PREFIX/www/index.html"
  : >"$PREFIX/backends"
  : >"$PREFIX/backend.pids"
  local i port
  for i in $(seq 1 "$count"); do
    port="$(free_port)"
    ( cd "$PREFIX/www" && exec nohup "$PY" -m http.server --bind 127.0.0.1 "$port" >"$PREFIX/logs/backend-$port.log" 2>&1 ) &
    echo $! >>"$PREFIX/backend.pids"
    echo "127.0.0.1:$port" >>"$PREFIX/backends"
  done
  while read -r addr; do
    wait_http "${addr##*:}" || die "backend $addr did not answer"
  done <"$PREFIX/backends"
  local nport="${NGINX_PORT:-$(free_port)}"
  echo "$nport" >"$PREFIX/port"
  {
    echo "upstream backend {"
    echo "    least_conn;"
    head -n 2 "$PREFIX/backends" | sed 's/.*/    server & max_fails=3 fail_timeout=30s;/'
    echo "}"
  } >"$UPSTREAM"
  cat >"$CONF" <<EOF
worker_processes 2;
pid $PREFIX/nginx.pid;
error_log $PREFIX/logs/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $PREFIX/tmp/client_body;
    proxy_temp_path $PREFIX/tmp/proxy;
    fastcgi_temp_path $PREFIX/tmp/fastcgi;
    uwsgi_temp_path $PREFIX/tmp/uwsgi;
    scgi_temp_path $PREFIX/tmp/scgi;
    include upstream.conf;
    server {
        listen 127.0.0.1:$nport;
        location / {
            proxy_pass http://backend;
            proxy_next_upstream error timeout;
        }
    }
}
EOF
  nginx -p "$PREFIX" -e "$PREFIX/logs/error.log" -c "$CONF" -t -q || die "nginx rejected $CONF"
  nginx -p "$PREFIX" -e "$PREFIX/logs/error.log" -c "$CONF" || die "nginx did not start"
  wait_http "$nport" || die "nginx did not answer on 127.0.0.1:$nport"
  print_env
}

stop() {
  if [ -f "$PREFIX/nginx.pid" ] && kill -0 "$(cat "$PREFIX/nginx.pid")" 2>/dev/null; then
    nginx -p "$PREFIX" -e "$PREFIX/logs/error.log" -c "$CONF" -s quit 2>/dev/null || kill "$(cat "$PREFIX/nginx.pid")" || true
    for _ in $(seq 1 50); do [ -f "$PREFIX/nginx.pid" ] || break; sleep 0.1; done
  fi
  if [ -f "$PREFIX/backend.pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$PREFIX/backend.pids"
    rm -f "$PREFIX/backend.pids"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  *) die "usage: nginx.sh install | start [BACKENDS] | stop" ;;
esac
