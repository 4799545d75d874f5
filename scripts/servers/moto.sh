#!/usr/bin/env bash
# moto.sh — installs and runs moto (AWS EC2/S3 emulation) on loopback for
# himaplan's tests, the demo and CI. It owns the virtualenv under the cache
# directory and one background moto_server per run directory; it must not
# touch anything else, and moto only ever listens on 127.0.0.1.
#
# Usage:
#   moto.sh install              create/reuse the venv with moto[server] 5.2.x
#   moto.sh start [PORT]         start moto_server in the background (default 5000),
#                                wait until it answers, print `export ...` for eval
#   moto.sh stop                 stop the server started by `start`
#   moto.sh serve-single PORT    run moto single-threaded in the foreground
#                                (for lock-contention tests: the emulator is not the race)
#
# Environment: HIMAPLAN_CACHE (default ~/.cache/himaplan) holds the venv;
# HIMAPLAN_MOTO_RUN (default $HIMAPLAN_CACHE/run/moto) holds pid and log.
set -euo pipefail

CACHE="${HIMAPLAN_CACHE:-$HOME/.cache/himaplan}"
VENV="$CACHE/venv"
RUN_DIR="${HIMAPLAN_MOTO_RUN:-$CACHE/run/moto}"
PY="$VENV/bin/python"

die() { echo "moto.sh: $*" >&2; exit 1; }

install_moto() {
  if [ -x "$PY" ] && "$PY" -c 'import moto, moto.server, werkzeug; assert moto.__version__.startswith("5.2")' 2>/dev/null; then
    return 0
  fi
  mkdir -p "$CACHE"
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" || die "cannot create the virtualenv at $VENV (is python3-venv installed?)"
  fi
  "$PY" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.2,<5.3' >&2 \
    || die "pip could not install moto[server] into $VENV"
}

# Waits until moto answers on PORT, at most ~15 s.
wait_ready() {
  local port="$1" i
  for i in $(seq 1 75); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

print_env() {
  local port="$1"
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1"
}

start_moto() {
  local port="${1:-5000}"
  case "$port" in ''|*[!0-9]*) die "PORT must be a number, got '$port'";; esac
  install_moto
  mkdir -p "$RUN_DIR"
  local pidfile="$RUN_DIR/moto.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    if [ "$(cat "$RUN_DIR/moto.port" 2>/dev/null)" = "$port" ] && wait_ready "$port"; then
      print_env "$port"
      return 0
    fi
    die "a moto_server (pid $(cat "$pidfile")) already runs from $RUN_DIR on another port; run 'moto.sh stop' first"
  fi
  # Run from the run dir: moto's request recorder writes a file there.
  ( cd "$RUN_DIR" && MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true MOTO_ENABLE_AMI_VALIDATION=true \
    MOTO_RECORDER_FILEPATH="$RUN_DIR/moto_recording" \
    exec nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$RUN_DIR/moto.log" 2>&1 ) &
  echo $! >"$pidfile"
  echo "$port" >"$RUN_DIR/moto.port"
  if ! wait_ready "$port"; then
    tail -n 20 "$RUN_DIR/moto.log" >&2 || true
    die "moto_server did not answer on 127.0.0.1:$port within 15 s (log: $RUN_DIR/moto.log)"
  fi
  print_env "$port"
}

stop_moto() {
  local pidfile="$RUN_DIR/moto.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$RUN_DIR/moto.port"
}

serve_single() {
  local port="${1:-}"
  case "$port" in ''|*[!0-9]*) die "usage: moto.sh serve-single PORT";; esac
  install_moto
  mkdir -p "$RUN_DIR"
  cd "$RUN_DIR"
  MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true MOTO_ENABLE_AMI_VALIDATION=true \
  MOTO_RECORDER_FILEPATH="$RUN_DIR/moto_recording.$port" \
  exec "$PY" - "$port" <<'EOF'
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=False, use_reloader=False)
EOF
}

case "${1:-}" in
  install) install_moto ;;
  start) start_moto "${2:-}" ;;
  stop) stop_moto ;;
  serve-single) serve_single "${2:-}" ;;
  env) print_env "${2:-5000}" ;;
  *) die "usage: moto.sh install | start [PORT] | stop | serve-single PORT | env [PORT]" ;;
esac
