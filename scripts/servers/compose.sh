#!/usr/bin/env bash
# compose.sh — builds (once, cached) the real Docker Compose v2 CLI that
# operators run beside himaplan, for the Docker provider's tests and the
# demo. It owns the cached binary under $HIMAPLAN_CACHE/compose and the Go
# module and build caches next to it; it starts no daemon (compose talks to
# the dockerd of scripts/servers/dockerd.sh through DOCKER_HOST).
#
# Debian's `docker-compose` package is Compose v1 (1.29, Python,
# project_service_1 names) and does not count. `go install
# github.com/docker/compose/v2/cmd@VERSION` is refused (compose's go.mod has
# exclude directives), so the build goes through the small consuming module
# committed in scripts/servers/compose (go.mod + go.sum, -mod=readonly).
#
# Usage:
#   compose.sh install   build docker-compose unless the cached binary exists
#   compose.sh path      print the cached binary's path (after install)
#   compose.sh env       print `export HIMAPLAN_DOCKER_COMPOSE=...`
#
# Environment: HIMAPLAN_CACHE (default ~/.cache/himaplan) — binary, Go module
# and build caches under $HIMAPLAN_CACHE/compose; COMPOSE_BUILD_PROCS
# (default 2) bounds the build's parallelism.
#
# The first build (measured on 2 shared cores with Go 1.26.8, modules
# already downloaded) took 191 s wall / 270 s CPU, peaked at ~1.0 GB RSS and
# left a 64 MB binary, ~610 MB of module cache and ~910 MB of build cache
# (safe to delete once the binary exists); downloading the modules took
# another ~90 s. It runs under `nice -n 19` because the cores are shared.
# Later runs find the binary: `install` then takes milliseconds.
#
# Compose v2.40.3's `config --hash` ignores env_file (docker/compose#14001,
# fixed in v5.5.0): himaplan refuses env_file in a compose_file service.
set -euo pipefail

COMPOSE_VERSION="v2.40.3"
# go directive of github.com/docker/compose/v2 v2.40.3's go.mod.
GO_MIN="1.24.9"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="$HERE/compose"
CACHE="${HIMAPLAN_CACHE:-${HOME:-/root}/.cache/himaplan}/compose"
BIN="$CACHE/bin/docker-compose-$COMPOSE_VERSION"

die() { echo "compose.sh: $*" >&2; exit 1; }
say() { echo "compose.sh: $*" >&2; }

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "no Go toolchain (go on PATH or /usr/local/go/bin/go) to build Docker Compose $COMPOSE_VERSION; need Go >= $GO_MIN"
  fi
}

check_go_version() {
  local go="$1" have
  have="$("$go" env GOVERSION 2>/dev/null)" || die "'$go env GOVERSION' failed"
  have="${have#go}"
  if [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n1)" != "$GO_MIN" ]; then
    die "Go $have is too old to build Docker Compose $COMPOSE_VERSION (its go.mod says go $GO_MIN)"
  fi
}

go_build() {
  local go log start
  go="$(find_go)"
  check_go_version "$go"
  mkdir -p "$CACHE/bin" "$CACHE/logs"
  log="$CACHE/logs/build-$(basename "$BIN").log"
  say "building docker-compose $COMPOSE_VERSION into $BIN (first time only; log: $log)"
  start=$SECONDS
  if ! ( cd "$MODULE" && \
         env GOPATH="$CACHE/gopath" GOMODCACHE="$CACHE/gopath/pkg/mod" GOCACHE="$CACHE/gocache" \
             GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0 \
             GOMAXPROCS="${COMPOSE_BUILD_PROCS:-2}" \
             nice -n 19 "$go" build -p "${COMPOSE_BUILD_PROCS:-2}" -trimpath \
               -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
               -o "$BIN.tmp.$$" github.com/docker/compose/v2/cmd ) >"$log" 2>&1; then
    rm -f "$BIN.tmp.$$"
    tail -n 30 "$log" >&2
    die "go build of docker-compose failed (log: $log)"
  fi
  mv -f "$BIN.tmp.$$" "$BIN"
  say "built $BIN in $((SECONDS - start)) s"
}

install() {
  [ -f "$MODULE/go.mod" ] || die "build module $MODULE/go.mod is missing"
  mkdir -p "$CACHE/bin"
  # One build at a time: a second run waits for the lock, then finds the binary.
  exec 9>"$CACHE/build.lock"
  flock 9
  [ -x "$BIN" ] || go_build
  flock -u 9
  "$BIN" version --short >/dev/null || die "$BIN does not run"
}

case "${1:-}" in
  install) install ;;
  path) echo "$BIN" ;;
  env) echo "export HIMAPLAN_DOCKER_COMPOSE=$BIN" ;;
  *) die "usage: compose.sh install|path|env" ;;
esac
