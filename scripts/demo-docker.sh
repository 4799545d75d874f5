# demo-docker.sh — the Docker part of scripts/demo, to be `source`d (not run).
# Defines:
#   demo_docker_start   install docker.io when missing, start the private
#                       dockerd of scripts/servers/dockerd.sh (no bridge, no
#                       iptables), build the image himaplan/busybox:1, export
#                       DOCKER_HOST, and remove containers a previous demo
#                       left in the compose project "himalytix"
#   demo_docker_stop    remove the demo's containers; stop dockerd only if
#                       demo_docker_start started it (the tests share it)
#   demo_docker_ps      list the demo's containers with their limits
#   demo_docker_compose_ps  what the real Docker Compose v2 CLI (built once
#                       by scripts/servers/compose.sh, exported as
#                       HIMAPLAN_DOCKER_COMPOSE) lists for the project
# Works under `set -euo pipefail`. Uses HIMAPLAN_CACHE / HIMAPLAN_RUN like
# the other scripts (see scripts/env.sh).

_demo_docker_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_demo_docker_started=0
DEMO_DOCKER_PROJECT="${DEMO_DOCKER_PROJECT:-himalytix}"

_demo_docker_sh() {
  bash "$_demo_docker_root/scripts/servers/dockerd.sh" "$@"
}

# The Debian client matches the Debian daemon; prefer it to any other
# `docker` earlier on PATH.
_demo_docker_cli() {
  if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

_demo_docker_clean() {
  local ids
  ids="$(_demo_docker_cli ps -aq --filter "label=com.docker.compose.project=$DEMO_DOCKER_PROJECT" 2>/dev/null || true)"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    _demo_docker_cli rm -f $ids >/dev/null
  fi
}

demo_docker_start() {
  _demo_docker_sh install
  # The Compose v2 CLI operators run beside himaplan (cached after one build).
  bash "$_demo_docker_root/scripts/servers/compose.sh" install
  eval "$(bash "$_demo_docker_root/scripts/servers/compose.sh" env)"
  export HIMAPLAN_DOCKER_COMPOSE
  eval "$(_demo_docker_sh env)"
  if ! _demo_docker_cli -H "$DOCKER_HOST" version >/dev/null 2>&1; then
    _demo_docker_started=1
  fi
  eval "$(_demo_docker_sh start)"
  export DOCKER_HOST
  _demo_docker_sh image
  _demo_docker_clean
}

demo_docker_stop() {
  [ -n "${DOCKER_HOST:-}" ] || return 0
  _demo_docker_clean || true
  if [ "$_demo_docker_started" = 1 ]; then
    _demo_docker_sh stop >/dev/null 2>&1 || true
    _demo_docker_started=0
  fi
}

demo_docker_ps() {
  _demo_docker_cli ps --filter "label=com.docker.compose.project=$DEMO_DOCKER_PROJECT" \
    --format '{{.Names}}\t{{.Status}}' | sort -V
  local id
  for id in $(_demo_docker_cli ps -q --filter "label=com.docker.compose.project=$DEMO_DOCKER_PROJECT"); do
    _demo_docker_cli inspect --format '{{.Name}} cpus={{.HostConfig.NanoCpus}} memory={{.HostConfig.Memory}} started={{.State.StartedAt}}' "$id"
  done | sed 's|^/||' | sort -V
}

demo_docker_compose_ps() {
  # `-p` alone: compose finds the project's containers by their labels.
  local listed
  listed="$("$HIMAPLAN_DOCKER_COMPOSE" -p "$DEMO_DOCKER_PROJECT" ps --format '{{.Name}}\t{{.Service}}\t{{.Status}}' | sort -V)"
  if [ -n "$listed" ]; then
    echo "$listed"
  else
    # The example's services declare no compose_file and no compose-made
    # replica exists to copy compose's bookkeeping labels from, so compose
    # does not count these containers as its own (docs/docker-compose.md).
    echo "(none: the example's services are himaplan's alone; declare compose_file to share them with compose)"
  fi
}
