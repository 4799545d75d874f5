#!/usr/bin/env bash
# doctools.sh — installs the real tools the documentation and graph tests
# check himaplan's output with: Graphviz (`dot -Tjson` parses `graph`'s
# DOT), fish and zsh (syntax-check the completion scripts; bash is always
# there), and the npm `mermaid` package with jsdom (its parser reads
# `graph --format mermaid`), installed under $HIMAPLAN_CACHE keyed by
# version, never into the repository. No server: nothing is started.
#
# Usage:
#   doctools.sh install   apt-get graphviz fish zsh (skipped when present);
#                         npm install mermaid + jsdom into the cache
#   doctools.sh dir       print the mermaid directory (MERMAID_DIR)
set -euo pipefail

MERMAID_VERSION=12.3.0
JSDOM_VERSION=27.4.0
CACHE="${HIMAPLAN_CACHE:-$HOME/.cache/himaplan}"
MERMAID_DIR="$CACHE/mermaid-$MERMAID_VERSION-jsdom-$JSDOM_VERSION"

die() { echo "doctools.sh: $*" >&2; exit 1; }

install() {
  local missing=()
  command -v dot >/dev/null 2>&1 || missing+=(graphviz)
  command -v fish >/dev/null 2>&1 || missing+=(fish)
  command -v zsh >/dev/null 2>&1 || missing+=(zsh)
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${missing[@]}" >&2 \
      || { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; } \
      || die "apt-get could not install ${missing[*]}"
  fi
  if [ ! -f "$MERMAID_DIR/.installed" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed to install mermaid"
    mkdir -p "$MERMAID_DIR"
    [ -f "$MERMAID_DIR/package.json" ] || echo '{"private": true}' >"$MERMAID_DIR/package.json"
    (cd "$MERMAID_DIR" && npm install --no-audit --no-fund --loglevel=error \
      "mermaid@$MERMAID_VERSION" "jsdom@$JSDOM_VERSION" >&2) || die "npm could not install mermaid $MERMAID_VERSION"
    touch "$MERMAID_DIR/.installed"
  fi
}

case "${1:-}" in
  install) install ;;
  dir) echo "$MERMAID_DIR" ;;
  *) die "usage: doctools.sh install|dir" ;;
esac
