#!/usr/bin/env bash
# kube-apiserver.sh — builds (once, cached) and runs a real kube-apiserver
# with the etcd it stores into, both on loopback, for himaplan's Kubernetes
# provider tests and the demo. It owns the cached binaries under
# $HIMAPLAN_CACHE/kube, one run directory (etcd data, certificates, token
# file, kubeconfig, logs, pid files) and the two daemons started from it; it
# must not touch the system's own etcd service, and both daemons listen on
# 127.0.0.1 only. There is no controller manager or scheduler: the API server
# alone stores, defaults and validates objects, which is what the tests check.
#
# Usage:
#   kube-apiserver.sh install  apt-get etcd-server/openssl/curl (skipped when
#                              present); build kube-apiserver and kubectl from
#                              the Go module in scripts/servers/kube unless the
#                              cached binaries exist
#   kube-apiserver.sh start    install, make certificates/token (first time),
#                              start etcd and kube-apiserver, wait for /readyz,
#                              write the kubeconfig, print `export ...` lines
#   kube-apiserver.sh stop     stop both daemons started from the run directory
#   kube-apiserver.sh env      print the export lines again
#   kube-apiserver.sh reset    stop, then delete the run directory (etcd data,
#                              certificates, token) so the next start is fresh
#
# Environment: HIMAPLAN_CACHE (default ~/.cache/himaplan) — binaries, Go
# module and build caches under $HIMAPLAN_CACHE/kube; HIMAPLAN_RUN (default
# /tmp/himaplan-run) — the run directory is $HIMAPLAN_RUN/kube;
# KUBE_APISERVER_PORT (default 56443), KUBE_ETCD_PORT (default 52379) and
# KUBE_ETCD_PEER_PORT (default 52380) choose the loopback ports;
# KUBE_ETCD=debian|build (default debian) chooses Debian's etcd-server 3.4 or
# an etcd built from go.etcd.io/etcd/server/v3 at the version k8s.io/kubernetes
# requires (cached like kube-apiserver).
#
# The first build (measured on 2 shared cores with Go 1.26.8) downloads ~90 MB
# of module zips (~560 MB unpacked), takes ~12 min wall / ~7.6 CPU-min, peaks
# at ~2.3 GB RSS (the linker) and leaves a 114 MB binary plus ~2.7 GB of Go
# build cache under $HIMAPLAN_CACHE/kube/gocache (safe to delete once the
# binary exists). It runs under `nice -n 19` because the cores are shared.
# kubectl builds from the same module and caches: measured 83 s wall
# (~53 CPU-s) once kube-apiserver's build cache exists, ~0.9 GB peak RSS,
# a 62 MB binary. Later runs find the binaries in the cache: `install` then
# takes milliseconds and `start` a few seconds.
#
# Each etcd kind keeps its own data directory (etcd-data-debian,
# etcd-data-build): etcd 3.4 cannot open a 3.7 data directory.
set -euo pipefail

KUBE_VERSION="v1.37.2"
# go directive of k8s.io/kubernetes v1.37.2's go.mod: the oldest Go that builds it.
GO_MIN="1.26"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="$HERE/kube"
CACHE="${HIMAPLAN_CACHE:-${HOME:-/root}/.cache/himaplan}/kube"
APISERVER_BIN="$CACHE/bin/kube-apiserver-$KUBE_VERSION"
# The real client, for tests that run what a CronJob's pod would run (as its
# ServiceAccount) and that make another field manager own fields.
KUBECTL_BIN="$CACHE/bin/kubectl-$KUBE_VERSION"
RUN_ROOT="${HIMAPLAN_RUN:-/tmp/himaplan-run}"
RUN="$RUN_ROOT/kube"
CERTS="$RUN/certs"
PORT="${KUBE_APISERVER_PORT:-56443}"
ETCD_PORT="${KUBE_ETCD_PORT:-52379}"
ETCD_PEER_PORT="${KUBE_ETCD_PEER_PORT:-52380}"
ETCD_KIND="${KUBE_ETCD:-debian}"
KUBECONFIG_FILE="$RUN/kubeconfig"

die() { echo "kube-apiserver.sh: $*" >&2; exit 1; }
say() { echo "kube-apiserver.sh: $*" >&2; }

check_port() {
  case "$1" in ''|*[!0-9]*) die "port must be a number, got '$1'";; esac
}

# --- install -----------------------------------------------------------------

apt_install() {
  local missing=() cmd pkg
  for pair in etcd:etcd-server openssl:openssl curl:curl; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    [ "$cmd" = etcd ] && [ "$ETCD_KIND" != debian ] && continue
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  # Debian's etcd-server package enables a system etcd service; where a
  # policy-rc.d does not stop it, it listens on 127.0.0.1:2379, which does
  # not clash with the ports used here.
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
    || die "apt-get could not install ${missing[*]}"
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "no Go toolchain (go on PATH or /usr/local/go/bin/go) to build kube-apiserver $KUBE_VERSION; need Go >= $GO_MIN"
  fi
}

check_go_version() {
  local go="$1" have
  have="$("$go" env GOVERSION 2>/dev/null)" || die "'$go env GOVERSION' failed"
  have="${have#go}"
  # sort -V puts the smaller first: the minimum must come first (or be equal).
  if [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n1)" != "$GO_MIN" ]; then
    die "Go $have is too old to build kube-apiserver $KUBE_VERSION (its go.mod says go $GO_MIN)"
  fi
}

# go_build OUT PACKAGE [LDFLAGS...]: builds one `tool` package of the build
# module into OUT, atomically, logging to $CACHE/logs. The caches live under
# $CACHE so nothing lands in the user's own GOPATH and a rerun reuses them.
go_build() {
  local out="$1" pkg="$2" extra="${3:-}" go log
  go="$(find_go)"
  check_go_version "$go"
  mkdir -p "$CACHE/bin" "$CACHE/logs"
  log="$CACHE/logs/build-$(basename "$out").log"
  say "building $pkg into $out (first time only; log: $log)"
  local start=$SECONDS
  if ! ( cd "$MODULE" && \
         env GOPATH="$CACHE/gopath" GOMODCACHE="$CACHE/gopath/pkg/mod" GOCACHE="$CACHE/gocache" \
             GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0 \
             GOMAXPROCS="${KUBE_BUILD_PROCS:-2}" \
             nice -n 19 "$go" build -p "${KUBE_BUILD_PROCS:-2}" -trimpath \
               -ldflags "-s -w $extra" -o "$out.tmp.$$" "$pkg" ) >"$log" 2>&1; then
    rm -f "$out.tmp.$$"
    tail -n 30 "$log" >&2
    die "go build $pkg failed (log: $log)"
  fi
  mv -f "$out.tmp.$$" "$out"
  say "built $out in $((SECONDS - start)) s"
}

etcd_version() {
  # The etcd that k8s.io/kubernetes requires, read from the build module's
  # go.mod so it moves with the Kubernetes release.
  awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2; exit }' "$MODULE/go.mod"
}

etcd_bin() {
  if [ "$ETCD_KIND" = debian ]; then
    command -v etcd || echo /usr/bin/etcd
  else
    local v
    v="$(etcd_version)"
    [ -n "$v" ] || die "no go.etcd.io/etcd/server/v3 version in $MODULE/go.mod"
    echo "$CACHE/bin/etcd-$v"
  fi
}

install() {
  case "$ETCD_KIND" in debian|build) ;; *) die "KUBE_ETCD must be 'debian' or 'build', got '$ETCD_KIND'";; esac
  apt_install
  [ -f "$MODULE/go.mod" ] || die "build module $MODULE/go.mod is missing"
  mkdir -p "$CACHE/bin"
  # One build at a time, even if two test runs start together: the second
  # waits for the lock and then finds the binary.
  exec 9>"$CACHE/build.lock"
  flock 9
  local v=k8s.io/component-base/version
  local stamp="-X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=$(echo "$KUBE_VERSION" | cut -d. -f1 | tr -d v) -X $v.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $v.gitTreeState=clean"
  [ -x "$APISERVER_BIN" ] || go_build "$APISERVER_BIN" k8s.io/kubernetes/cmd/kube-apiserver "$stamp"
  [ -x "$KUBECTL_BIN" ] || go_build "$KUBECTL_BIN" k8s.io/kubernetes/cmd/kubectl "$stamp"
  if [ "$ETCD_KIND" = build ]; then
    local etcd
    etcd="$(etcd_bin)"
    [ -x "$etcd" ] || go_build "$etcd" go.etcd.io/etcd/server/v3
  fi
  flock -u 9
}

# --- start -------------------------------------------------------------------

print_env() {
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export KUBE_APISERVER_URL=https://127.0.0.1:$PORT KUBE_APISERVER_CA=$CERTS/ca.crt KUBE_APISERVER_TOKEN_FILE=$RUN/admin.token"
  echo "export KUBECTL=$KUBECTL_BIN"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

make_certs() {
  mkdir -p "$CERTS"
  chmod 0700 "$CERTS"
  if [ ! -f "$CERTS/ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=himaplan-test-ca" \
      -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" 2>/dev/null || die "openssl could not make the CA"
    rm -f "$CERTS/apiserver.crt"
  fi
  if [ ! -f "$CERTS/apiserver.crt" ]; then
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout "$CERTS/apiserver.key" -out "$CERTS/apiserver.csr" 2>/dev/null || die "openssl could not make the serving key"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$CERTS/apiserver.ext"
    openssl x509 -req -in "$CERTS/apiserver.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -CAcreateserial \
      -days 3650 -extfile "$CERTS/apiserver.ext" -out "$CERTS/apiserver.crt" 2>/dev/null || die "openssl could not sign the serving certificate"
  fi
  if [ ! -f "$CERTS/sa.key" ]; then
    openssl genrsa -out "$CERTS/sa.key" 2048 2>/dev/null || die "openssl could not make the service-account key"
    openssl rsa -in "$CERTS/sa.key" -pubout -out "$CERTS/sa.pub" 2>/dev/null || die "openssl could not derive the service-account public key"
  fi
  local t
  for t in admin nobody; do
    if [ ! -f "$RUN/$t.token" ]; then
      openssl rand -hex 24 >"$RUN/$t.token"
      chmod 0600 "$RUN/$t.token"
    fi
  done
  # Static tokens: the admin (group system:masters, which RBAC lets do
  # anything) for the tests, and a user with no rights for "forbidden" tests.
  printf '%s,himaplan-admin,himaplan-admin,"system:masters"\n%s,himaplan-nobody,himaplan-nobody\n' \
    "$(cat "$RUN/admin.token")" "$(cat "$RUN/nobody.token")" >"$RUN/tokens.csv"
  chmod 0600 "$RUN/tokens.csv"
}

start_etcd() {
  alive "$RUN/etcd.pid" && return 0
  local bin
  bin="$(etcd_bin)"
  [ -x "$bin" ] || die "etcd binary $bin not found (run install)"
  setsid nohup "$bin" --name himaplan --data-dir "$RUN/etcd-data-$ETCD_KIND" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "himaplan=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --logger zap --log-outputs stderr \
    </dev/null >"$RUN/etcd.log" 2>&1 &
  echo $! >"$RUN/etcd.pid"
  local i
  for i in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; then return 0; fi
    alive "$RUN/etcd.pid" || break
    sleep 0.1
  done
  tail -n 20 "$RUN/etcd.log" >&2 || true
  die "etcd did not answer on 127.0.0.1:$ETCD_PORT within 10 s (log: $RUN/etcd.log)"
}

start_apiserver() {
  alive "$RUN/kube-apiserver.pid" && return 0
  # ServiceAccount admission only acts on pods, which nothing here runs; it
  # stays on. The service range is a configuration value only: nothing is
  # ever sent to it. The endpoint reconciler (which publishes the advertise
  # address as the `kubernetes` service's endpoint) refuses a loopback
  # address, and no pod needs that endpoint, so it is off.
  setsid nohup "$APISERVER_BIN" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$PORT" --advertise-address 127.0.0.1 \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --token-auth-file "$RUN/tokens.csv" --authorization-mode RBAC \
    --client-ca-file "$CERTS/ca.crt" \
    --tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$CERTS/sa.pub" --service-account-signing-key-file "$CERTS/sa.key" \
    --cert-dir "$CERTS" --profiling=false \
    </dev/null >"$RUN/kube-apiserver.log" 2>&1 &
  echo $! >"$RUN/kube-apiserver.pid"
}

wait_ready() {
  local i token
  token="$(cat "$RUN/admin.token")"
  # The first start bootstraps RBAC roles and priority levels into etcd; on
  # two shared cores that takes a while.
  for i in $(seq 1 240); do
    if curl -fsS --cacert "$CERTS/ca.crt" -H "Authorization: Bearer $token" \
         "https://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -q '^ok$'; then
      return 0
    fi
    alive "$RUN/kube-apiserver.pid" || break
    sleep 0.5
  done
  tail -n 30 "$RUN/kube-apiserver.log" >&2 || true
  die "kube-apiserver did not become ready on 127.0.0.1:$PORT within 120 s (log: $RUN/kube-apiserver.log)"
}

write_kubeconfig() {
  # The CA is embedded so the file stays valid wherever it is copied.
  cat >"$KUBECONFIG_FILE.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: himaplan
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority-data: $(base64 -w0 <"$CERTS/ca.crt")
users:
- name: himaplan-admin
  user:
    token: $(cat "$RUN/admin.token")
- name: himaplan-nobody
  user:
    token: $(cat "$RUN/nobody.token")
contexts:
- name: himaplan
  context:
    cluster: himaplan
    user: himaplan-admin
- name: himaplan-nobody
  context:
    cluster: himaplan
    user: himaplan-nobody
current-context: himaplan
EOF
  chmod 0600 "$KUBECONFIG_FILE.tmp"
  mv -f "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

start() {
  check_port "$PORT"; check_port "$ETCD_PORT"; check_port "$ETCD_PEER_PORT"
  install
  mkdir -p "$RUN"
  make_certs
  start_etcd
  start_apiserver
  wait_ready
  write_kubeconfig
  print_env
}

stop_pid() {
  local file="$1" pid
  alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop() {
  stop_pid "$RUN/kube-apiserver.pid"
  stop_pid "$RUN/etcd.pid"
}

reset() {
  stop
  rm -rf "$RUN"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  reset) reset ;;
  *) die "usage: kube-apiserver.sh install | start | stop | env | reset" ;;
esac
