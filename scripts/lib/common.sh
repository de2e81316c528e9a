# shellcheck shell=bash
# Shared helpers for scripts/setup and scripts/services. Source it; it defines
# functions and a few variables only.

# shellcheck disable=SC2034 # used by the scripts that source this
OUTBOX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
readonly OUTBOX_ROOT
readonly OUTBOX_LOCAL="${OUTBOX_ROOT}/.local"
OUTBOX_LOG_TAG="${OUTBOX_LOG_TAG:-$(basename "$0")}"
readonly OUTBOX_LOG_TAG

# Progress and errors go to stderr so stdout stays machine-readable
# (`scripts/services env` is eval'ed).
log() { printf '[%s] %s\n' "${OUTBOX_LOG_TAG}" "$*" >&2; }
warn() { log "warning: $*"; }
die() {
  log "error: $*"
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ ${EUID} -eq 0 ]]; }

# Seconds since the epoch with millisecond precision, for "took 1.234s" lines.
now_ms() { date +%s%3N; }
elapsed_since() { # start_ms -> "1.234s"
  local d=$(($(now_ms) - $1))
  printf '%d.%03ds' $((d / 1000)) $((d % 1000))
}

# Debian 12 ships the binary as kcat; older packages called it kafkacat.
kcat_bin() {
  local b
  for b in kcat kafkacat; do
    if have "$b"; then
      command -v "$b"
      return 0
    fi
  done
  return 1
}

# wait_until TIMEOUT_S DESCRIPTION CMD... : polls CMD every 0.2 s until it
# succeeds (return 0) or TIMEOUT_S elapses (return 1). A CMD that wants to stop
# the wait early (e.g. the process died) can return 2.
wait_until() {
  local timeout_s=$1 what=$2 rc
  shift 2
  local deadline=$(($(now_ms) + timeout_s * 1000))
  while :; do
    rc=0
    "$@" || rc=$?
    case ${rc} in
      0) return 0 ;;
      2) return 1 ;;
    esac
    if (($(now_ms) >= deadline)); then
      log "timed out after ${timeout_s}s waiting for ${what}"
      return 1
    fi
    sleep 0.2
  done
}
