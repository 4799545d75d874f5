#!/usr/bin/env bash
# cronref.sh — builds (once, cached) `cronref`, the reference for himaplan's
# cron semantics: a small program over github.com/robfig/cron/v3 (what the
# Kubernetes CronJob controller parses and schedules with), from the Go
# module in scripts/servers/cronref. tests/cron_differential.rs runs it. It
# owns the cached binary under $HIMAPLAN_CACHE/cronref/bin, the copy of the
# toolchain's tzdata beside it, and the Go caches under $HIMAPLAN_CACHE/cronref;
# it starts no daemon and opens no port.
#
# Usage:
#   cronref.sh install   build cronref unless the cached binary exists
#   cronref.sh path      print the binary's path (after install)
#
# The binary is built with `-tags timetzdata`, like kube-controller-manager's
# `import _ "time/tzdata"`, and with the IANA release that data comes from
# (the DATA= line of $GOROOT/lib/time/update.bash) stamped in, so
# `cronref version` can say which tzdata it uses. time.LoadLocation prefers
# the machine's /usr/share/zoneinfo over embedded data, so the toolchain's
# lib/time/zoneinfo.zip (the very file time/tzdata embeds) is installed as
# BIN.zoneinfo.zip and cronref reads zones from it alone.
#
# Environment: HIMAPLAN_CACHE (default ~/.cache/himaplan).
# Measured on 2 shared cores with Go 1.26.8: the first build takes ~19 s
# wall (robfig/cron is one small module; most of it is compiling the
# standard library into a fresh GOCACHE), later installs find the binary.
set -euo pipefail

CRON_VERSION="v3.0.1"
GO_MIN="1.26"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="$HERE/cronref"
CACHE="${HIMAPLAN_CACHE:-${HOME:-/root}/.cache/himaplan}/cronref"
BIN="$CACHE/bin/cronref-$CRON_VERSION"

die() { echo "cronref.sh: $*" >&2; exit 1; }
say() { echo "cronref.sh: $*" >&2; }

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "no Go toolchain (go on PATH or /usr/local/go/bin/go) to build cronref; need Go >= $GO_MIN"
  fi
}

check_go_version() {
  local go="$1" have
  have="$("$go" env GOVERSION 2>/dev/null)" || die "'$go env GOVERSION' failed"
  have="${have#go}"
  if [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n1)" != "$GO_MIN" ]; then
    die "Go $have is too old to build cronref (its go.mod says go $GO_MIN)"
  fi
}

build() {
  local go goroot tzdata log start
  go="$(find_go)"
  check_go_version "$go"
  goroot="$("$go" env GOROOT)"
  tzdata="$(sed -n 's/^DATA=//p' "$goroot/lib/time/update.bash")"
  [ -n "$tzdata" ] || die "no DATA= line in $goroot/lib/time/update.bash"
  [ -f "$goroot/lib/time/zoneinfo.zip" ] || die "$goroot/lib/time/zoneinfo.zip is missing"
  mkdir -p "$CACHE/bin" "$CACHE/logs"
  log="$CACHE/logs/build.log"
  say "building cronref (robfig/cron $CRON_VERSION, tzdata $tzdata) into $BIN (first time only; log: $log)"
  start=$SECONDS
  if ! ( cd "$MODULE" && \
         env GOPATH="$CACHE/gopath" GOMODCACHE="$CACHE/gopath/pkg/mod" GOCACHE="$CACHE/gocache" \
             GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0 \
             nice -n 19 "$go" build -tags timetzdata -trimpath \
               -ldflags "-s -w -X main.tzdataVersion=$tzdata" -o "$BIN.tmp.$$" . ) >"$log" 2>&1; then
    rm -f "$BIN.tmp.$$"
    tail -n 30 "$log" >&2
    die "go build of cronref failed (log: $log)"
  fi
  # The zone data first, so that a binary present always has its data.
  cp "$goroot/lib/time/zoneinfo.zip" "$BIN.zoneinfo.zip.tmp.$$"
  mv -f "$BIN.zoneinfo.zip.tmp.$$" "$BIN.zoneinfo.zip"
  mv -f "$BIN.tmp.$$" "$BIN"
  say "built $BIN in $((SECONDS - start)) s"
}

install() {
  [ -f "$MODULE/go.mod" ] || die "build module $MODULE/go.mod is missing"
  mkdir -p "$CACHE/bin"
  # One build at a time: a second install waits, then finds the binary.
  exec 9>"$CACHE/build.lock"
  flock 9
  if [ ! -x "$BIN" ] || [ ! -f "$BIN.zoneinfo.zip" ]; then build; fi
  flock -u 9
}

case "${1:-}" in
  install) install ;;
  path) echo "$BIN" ;;
  *) die "usage: cronref.sh install | path" ;;
esac
