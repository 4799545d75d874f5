#!/usr/bin/env bash
# prometheus.sh — installs Prometheus 2.42 with promtool (Debian
# `prometheus`) for `himaplan advise` and its tests. The tests start their
# own Prometheus per test (tests/support/prometheus.rs): a data directory
# filled with `promtool tsdb create-blocks-from openmetrics` from a history
# the test wrote, then `prometheus` on 127.0.0.1 with a free port. This
# script only installs; it must not start or touch the system's own
# Prometheus service (the package's postinst is told not to start it).
#
# Usage:
#   prometheus.sh install   apt-get prometheus (skipped when present)
#   prometheus.sh version   print prometheus' and promtool's versions
set -euo pipefail

die() { echo "prometheus.sh: $*" >&2; exit 1; }

installed() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

install() {
  installed && return 0
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d answering 101 keeps the package's postinst from starting the
  # system service (no daemon of the machine is started by the test command).
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
  fi
  local rc=0
  apt-get install -y --no-install-recommends prometheus >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends prometheus >&2; } \
    || rc=$?
  [ -n "$created" ] && rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get could not install prometheus"
  installed || die "prometheus installed but prometheus/promtool are not on PATH"
}

case "${1:-}" in
  install) install ;;
  version) prometheus --version 2>&1 | head -n1; promtool --version 2>&1 | head -n1 ;;
  *) die "usage: prometheus.sh install | version" ;;
esac
