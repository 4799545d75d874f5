#!/usr/bin/env bash
# ci-tools.sh — installs (once, cached) the tools the CI-recipe and
# pull-request-comment tests run beside himaplan: cmark-gfm (Debian; the
# GitHub-flavoured renderer, run as `cmark-gfm --unsafe -e table`) and
# shellcheck (Debian; actionlint checks `run:` scripts with it),
# actionlint (Go module github.com/rhysd/actionlint, built under
# $HIMAPLAN_CACHE/actionlint) and gitlab-ci-local (npm, installed under
# $HIMAPLAN_CACHE/gitlab-ci-local). It starts no daemon and opens no port.
#
# Usage:
#   ci-tools.sh install   install whatever is missing
#   ci-tools.sh env       print `export ...` lines naming the three binaries
#
# Environment: HIMAPLAN_CACHE (default ~/.cache/himaplan).
# Measured on 2 shared cores: cmark-gfm + shellcheck from apt ~10 s;
# actionlint's first build 26 s (module download + compile into a fresh
# GOCACHE); gitlab-ci-local from npm 12 s. Later installs find them all.
# gitlab-ci-local is pinned to 4.65.1, the last release that runs on
# Debian 12's Node (later ones call Set.prototype.union, Node 22).
set -euo pipefail

ACTIONLINT_VERSION="v1.7.12"
GITLAB_CI_LOCAL_VERSION="4.65.1"
CACHE_ROOT="${HIMAPLAN_CACHE:-${HOME:-/root}/.cache/himaplan}"
AL_CACHE="$CACHE_ROOT/actionlint"
AL_BIN="$AL_CACHE/bin/actionlint-$ACTIONLINT_VERSION"
GCL_DIR="$CACHE_ROOT/gitlab-ci-local/$GITLAB_CI_LOCAL_VERSION"
GCL_BIN="$GCL_DIR/node_modules/.bin/gitlab-ci-local"

die() { echo "ci-tools.sh: $*" >&2; exit 1; }
say() { echo "ci-tools.sh: $*" >&2; }

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "no Go toolchain (go on PATH or /usr/local/go/bin/go) to build actionlint"
  fi
}

# cmark-gfm renders the comment; shellcheck is what actionlint runs on
# every `run:` script (without it, actionlint skips that check).
install_debian() {
  command -v cmark-gfm >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1 && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends cmark-gfm shellcheck >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends cmark-gfm shellcheck >&2; } \
    || die "apt-get could not install cmark-gfm and shellcheck"
}

install_actionlint() {
  [ -x "$AL_BIN" ] && return 0
  local go log start
  go="$(find_go)"
  mkdir -p "$AL_CACHE/bin" "$AL_CACHE/logs"
  log="$AL_CACHE/logs/build.log"
  say "building actionlint $ACTIONLINT_VERSION into $AL_BIN (first time only; log: $log)"
  start=$SECONDS
  if ! env GOPATH="$AL_CACHE/gopath" GOMODCACHE="$AL_CACHE/gopath/pkg/mod" GOCACHE="$AL_CACHE/gocache" \
         GOBIN="$AL_CACHE/gobin.$$" GOTOOLCHAIN=local GOFLAGS="-buildvcs=false" CGO_ENABLED=0 \
         nice -n 19 "$go" install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
         >"$log" 2>&1; then
    rm -rf "$AL_CACHE/gobin.$$"
    tail -n 30 "$log" >&2
    die "go install of actionlint failed (log: $log)"
  fi
  mv -f "$AL_CACHE/gobin.$$/actionlint" "$AL_BIN"
  rm -rf "$AL_CACHE/gobin.$$"
  say "built $AL_BIN in $((SECONDS - start)) s"
}

install_gitlab_ci_local() {
  [ -x "$GCL_BIN" ] && return 0
  command -v npm >/dev/null 2>&1 || die "npm is needed to install gitlab-ci-local"
  local tmp="$GCL_DIR.tmp.$$" start=$SECONDS
  say "installing gitlab-ci-local $GITLAB_CI_LOCAL_VERSION into $GCL_DIR (first time only)"
  mkdir -p "$tmp"
  if ! ( cd "$tmp" && npm install --no-audit --no-fund --loglevel=error "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" ) >&2; then
    rm -rf "$tmp"
    die "npm could not install gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION"
  fi
  rm -rf "$GCL_DIR"
  mv "$tmp" "$GCL_DIR"
  say "installed gitlab-ci-local in $((SECONDS - start)) s"
}

install() {
  mkdir -p "$CACHE_ROOT"
  # One install at a time: a second one waits, then finds the tools.
  exec 9>"$CACHE_ROOT/ci-tools.lock"
  flock 9
  install_debian
  install_actionlint
  install_gitlab_ci_local
  flock -u 9
}

case "${1:-}" in
  install) install ;;
  env)
    echo "export HIMAPLAN_CMARK_GFM=$(command -v cmark-gfm || echo cmark-gfm)"
    echo "export HIMAPLAN_ACTIONLINT=$AL_BIN"
    echo "export HIMAPLAN_GITLAB_CI_LOCAL=$GCL_BIN"
    ;;
  *) die "usage: ci-tools.sh install | env" ;;
esac
