#!/usr/bin/env bash
# dockerd.sh — installs and runs a private dockerd for himaplan's tests, the
# demo and CI, and builds the tiny local image they use. It owns one dockerd
# per run directory (socket, exec root, pid file, log) and its data root
# under the cache directory; it must not touch any other Docker daemon.
#
# The daemon never gets a bridge or iptables rules (--bridge=none
# --iptables=false --ip-masq=false): a bridge would sit on a private range,
# and traffic to private ranges is forbidden on these machines. Containers
# use network_mode "none" or "host". No image registry is reachable, so the
# image is built locally from Debian's busybox-static.
#
# Usage:
#   dockerd.sh install   apt-get install docker.io busybox-static when missing
#   dockerd.sh start     start dockerd in the background, wait until it
#                        answers, print `export DOCKER_HOST=...` for eval
#   dockerd.sh image     import the image himaplan/busybox:1 (once)
#   dockerd.sh stop      stop the daemon started by `start`, unmount its netns
#   dockerd.sh env       print the export line without starting anything
#
# Environment: HIMAPLAN_DOCKER_DATA (default $HIMAPLAN_CACHE/docker-data,
# HIMAPLAN_CACHE defaulting to ~/.cache/himaplan) is the data root; two
# daemons cannot share one, so scripts/test gives its run a data root of its
# own. HIMAPLAN_RUN (default /tmp/himaplan-run) holds socket, pid and log.
set -euo pipefail

CACHE="${HIMAPLAN_CACHE:-$HOME/.cache/himaplan}"
RUN="${HIMAPLAN_RUN:-/tmp/himaplan-run}"
SOCK="$RUN/docker.sock"
PIDFILE="$RUN/docker.pid"
EXEC_ROOT="$RUN/docker-exec"
DATA_ROOT="${HIMAPLAN_DOCKER_DATA:-$CACHE/docker-data}"
LOG="$RUN/dockerd.log"
IMAGE="himaplan/busybox:1"
HOST="unix://$SOCK"

die() { echo "dockerd.sh: $*" >&2; exit 1; }

# The Debian client (/usr/bin/docker) matches the Debian daemon; prefer it
# over any other `docker` earlier on PATH.
docker_cli() {
  if [ -x /usr/bin/docker ]; then /usr/bin/docker -H "$HOST" "$@"; else docker -H "$HOST" "$@"; fi
}

install_docker() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
    || die "apt-get could not install ${missing[*]}"
}

# True when the file is a statically linked executable (usable alone in an
# image with no libc).
file_is_static() {
  ! ldd "$1" >/dev/null 2>&1
}

answers() {
  docker_cli version >/dev/null 2>&1
}

start_docker() {
  install_docker
  mkdir -p "$RUN" "$DATA_ROOT" "$EXEC_ROOT"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    answers || die "a dockerd (pid $(cat "$PIDFILE")) runs from $RUN but does not answer on $SOCK; run 'dockerd.sh stop' first"
    echo "export DOCKER_HOST=$HOST"
    return 0
  fi
  rm -f "$PIDFILE" "$SOCK"
  # setsid: the daemon must not die with the shell or test that started it.
  setsid nohup dockerd \
    --host "$HOST" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --iptables=false --ip-masq=false --bridge=none \
    >"$LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 150); do
    answers && { echo "export DOCKER_HOST=$HOST"; return 0; }
    sleep 0.2
  done
  tail -n 20 "$LOG" >&2 || true
  die "dockerd did not answer on $SOCK within 30 s (log: $LOG)"
}

build_image() {
  answers || die "no dockerd answers on $SOCK; run 'dockerd.sh start' first"
  if docker_cli image inspect "$IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local bb=/bin/busybox
  file_is_static "$bb" || die "$bb is not statically linked; install busybox-static"
  local root
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp "$bb" "$root/bin/busybox"
  local applet
  for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  ln -sf busybox "$root/bin/sh"
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  tar -C "$root" -c . | docker_cli import \
    --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null \
    || die "docker import of $IMAGE failed"
}

stop_docker() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      # Containers first, at once: a daemon shutting down gives each
      # container up to 15 s, and busybox's pid 1 ignores SIGTERM.
      local ids
      ids="$(docker_cli ps -q 2>/dev/null || true)"
      # shellcheck disable=SC2086 # one word per container id
      [ -z "$ids" ] || docker_cli kill $ids >/dev/null 2>&1 || true
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
  fi
  # dockerd leaves its default network namespace mounted.
  if mountpoint -q "$EXEC_ROOT/netns/default" 2>/dev/null; then
    umount "$EXEC_ROOT/netns/default" || umount -l "$EXEC_ROOT/netns/default" || true
  fi
  rm -f "$SOCK"
}

case "${1:-}" in
  install) install_docker ;;
  start) start_docker ;;
  image) build_image ;;
  stop) stop_docker ;;
  env) echo "export DOCKER_HOST=$HOST" ;;
  *) die "usage: dockerd.sh install | start | image | stop | env" ;;
esac
