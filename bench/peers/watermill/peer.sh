#!/usr/bin/env bash
# Watermill peer of the outbox benchmark (issue 15): Watermill's Forwarder (SQL subscriber on PostgreSQL ->
# Kafka publisher), a small Go main in this folder. Contract: the peer contract of issue 15 (the driver in bench/ uses it).
#
#   peer.sh setup       build the binary into <repo>/.local/bench/watermill/ (Go module proxy only); quiet
#   peer.sh schema      drop + create Watermill's tables for $PEER_TOPIC in $PEER_SCHEMA (default public)
#   peer.sh insert-sql  print the INSERT ($1 = key, $2 = payload) the Forwarder's SQL publisher would run
#   peer.sh start       exec the forwarder in the foreground until SIGTERM
#   peer.sh describe    one line: name, versions, guarantees
#
# Environment: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, PEER_TOPIC, PEER_SCHEMA; optional WM_BATCH_SIZE (1000),
# WM_POLL_INTERVAL (10ms): see README.md for why these values.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"
out="${repo}/.local/bench/watermill"
bin="${out}/watermill-peer"

die() { echo "peer.sh (watermill): $*" >&2; exit 2; }

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    die "no Go toolchain: install Go >= 1.23 (go on PATH or /usr/local/go/bin/go)"
  fi
}

# Builds when a source file is newer than the binary; quick and silent when up to date.
setup() {
  local src
  if [[ -x "${bin}" ]]; then
    local stale=0
    for src in "${here}/main.go" "${here}/go.mod" "${here}/go.sum"; do
      [[ "${src}" -nt "${bin}" ]] && stale=1
    done
    (( stale == 0 )) && return 0
  fi
  local go_bin
  go_bin="$(find_go)"
  mkdir -p "${out}"
  # GOTOOLCHAIN=local: build with the installed Go, never fetch another toolchain. -trimpath: no local paths in it.
  (cd "${here}" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly "${go_bin}" build -trimpath -o "${bin}.tmp" .) >&2 \
    || die "go build failed (see above)"
  mv -f "${bin}.tmp" "${bin}"
}

cmd="${1:-}"
case "${cmd}" in
  setup)
    setup
    ;;
  schema)
    setup
    "${bin}" schema
    ;;
  insert-sql)
    setup
    "${bin}" insert-sql
    ;;
  start)
    setup
    exec "${bin}" run
    ;;
  describe)
    setup
    "${bin}" describe
    ;;
  create-topic)  # for smoke.sh: create $PEER_TOPIC with $2 partitions (the driver creates its own topics)
    setup
    "${bin}" create-topic "${2:-6}"
    ;;
  *)
    die "usage: peer.sh setup|schema|insert-sql|start|describe"
    ;;
esac
