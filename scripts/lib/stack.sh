# shellcheck shell=bash
# Runs the three daemons for scripts/demo and bench/e2e/run.sh: start with a log file, wait
# for /healthz, stop exactly the processes started here (by PID). Also the small HTTP,
# JSON-RPC, SQL and progress helpers both need. Source it after scripts/lib/common.sh.
#
# State: STACK_NAMES / STACK_PIDS (parallel arrays, in start order), STACK_LOG_DIR.

STACK_NAMES=()
STACK_PIDS=()
STACK_LOG_DIR=""
# Directory of wallet-service, outbox-relay, broadcaster-worker, walletctl: <build>/bin, where
# <build> is OUTBOX_BUILD_DIR (absolute or relative to the repository) or build/.
STACK_BIN_DIR="${OUTBOX_BUILD_DIR:-build}"
[[ ${STACK_BIN_DIR} == /* ]] || STACK_BIN_DIR="${OUTBOX_ROOT}/${STACK_BIN_DIR}"
STACK_BIN_DIR+=/bin

# conf_get FILE KEY DEFAULT: a value from a TOML file (dotted key), DEFAULT when absent.
conf_get() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, tomllib
path, key, default = sys.argv[1:]
try:
    with open(path, "rb") as f:
        node = tomllib.load(f)
    for part in key.split("."):
        node = node[part]
    print(str(node).lower() if isinstance(node, bool) else node)
except (KeyError, TypeError):
    print(default)
PY
}

# stack_start NAME [VAR=VALUE...] -- PROGRAM ARGS...: starts PROGRAM from STACK_BIN_DIR in the
# background with the extra environment, output to STACK_LOG_DIR/NAME.log (replaced), and
# records its PID (the program itself, not a wrapper shell).
stack_start() {
  local name=$1
  shift
  local -a envs=()
  while (($# > 0)) && [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  [[ ${1:-} == -- ]] || die "stack_start ${name}: missing -- before the program"
  shift
  local program="${STACK_BIN_DIR}/$1"
  shift
  [[ -x ${program} ]] || die "${program} is not built (run scripts/setup, or set OUTBOX_BUILD_DIR)"
  local log="${STACK_LOG_DIR}/${name}.log"
  : >"${log}"
  env "${envs[@]}" "${program}" "$@" </dev/null >>"${log}" 2>&1 &
  STACK_NAMES+=("${name}")
  STACK_PIDS+=("$!")
  printf '%s\n' "$!" >"${STACK_LOG_DIR}/${name}.pid"
}

# stack_pid NAME: the PID recorded for NAME.
stack_pid() {
  local i
  for i in "${!STACK_NAMES[@]}"; do
    if [[ ${STACK_NAMES[i]} == "$1" ]]; then
      printf '%s\n' "${STACK_PIDS[i]}"
      return 0
    fi
  done
  return 1
}

stack_alive() { kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]; }

# stack_tail NAME: the last lines of NAME's log, to stderr.
stack_tail() {
  local log="${STACK_LOG_DIR}/$1.log"
  [[ -s ${log} ]] || return 0
  log "---- last lines of ${log#"${OUTBOX_ROOT}"/}"
  tail -n 25 "${log}" >&2
}

# stack_port NAME TIMEOUT_S: the port NAME logged (`listening on http://HOST:PORT`), for
# daemons started with an ephemeral port (0).
stack_port() {
  local name=$1 timeout_s=$2 port="" deadline
  deadline=$(($(now_ms) + timeout_s * 1000))
  while (($(now_ms) < deadline)); do
    port="$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "${STACK_LOG_DIR}/${name}.log" | head -n1)"
    if [[ -n ${port} ]]; then
      printf '%s\n' "${port}"
      return 0
    fi
    stack_alive "$(stack_pid "${name}")" || break
    sleep 0.2
  done
  stack_tail "${name}"
  die "${name}: no 'listening on http://…' line in its log within ${timeout_s}s"
}

# stack_wait_healthy NAME URL TIMEOUT_S: waits for URL to answer 200; fails early (with the
# log's tail) if the process exits.
stack_wait_healthy() {
  local name=$1 url=$2 timeout_s=$3 pid deadline
  pid="$(stack_pid "${name}")"
  deadline=$(($(now_ms) + timeout_s * 1000))
  while :; do
    if curl -fsS -m 2 -o /dev/null "${url}" 2>/dev/null; then
      return 0
    fi
    if ! stack_alive "${pid}"; then
      local rc=0
      wait "${pid}" 2>/dev/null || rc=$?
      stack_tail "${name}"
      die "${name} exited (status ${rc}) before ${url} answered"
    fi
    if (($(now_ms) >= deadline)); then
      stack_tail "${name}"
      die "${name}: ${url} did not answer 200 within ${timeout_s}s"
    fi
    sleep 0.2
  done
}

# stack_stop_one NAME: SIGTERM, then SIGKILL after 30 s (the daemons' own shutdown deadlines
# are shorter).
stack_stop_one() {
  local name=$1 pid
  pid="$(stack_pid "${name}")" || return 0
  stack_alive "${pid}" || {
    wait "${pid}" 2>/dev/null || true
    return 0
  }
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$(($(now_ms) + 30000))
  while stack_alive "${pid}" && (($(now_ms) < deadline)); do sleep 0.1; done
  if stack_alive "${pid}"; then
    warn "${name} (pid ${pid}) still running 30s after SIGTERM: SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  local rc=0
  wait "${pid}" 2>/dev/null || rc=$?
  rm -f "${STACK_LOG_DIR}/${name}.pid"
  if ((rc != 0 && rc != 143)); then warn "${name} exited with status ${rc} (log: ${STACK_LOG_DIR#"${OUTBOX_ROOT}"/}/${name}.log)"; fi
}

# stack_stop: stops everything started here, newest first (the wallet keeps accepting until
# the end; the relay drains before the broadcaster goes).
stack_stop() {
  local i
  for ((i = ${#STACK_NAMES[@]} - 1; i >= 0; i--)); do
    stack_stop_one "${STACK_NAMES[i]}"
  done
  STACK_NAMES=()
  STACK_PIDS=()
}

# ensure_topic TOPIC: the Kafka topic exists (a metadata request for it has the broker create it
# with its defaults). A consumer that subscribes before its topic exists only sees it at its
# next metadata refresh, minutes later.
ensure_topic() {
  local kcat
  kcat="$(kcat_bin)" || die "kcat is missing (run scripts/setup)"
  wait_until 30 "Kafka topic $1" topic_has_partitions "${kcat}" "$1" || die "Kafka topic $1 could not be created"
}
topic_has_partitions() { # KCAT TOPIC
  "$1" -b "${KAFKA_BOOTSTRAP_SERVERS}" -m 5 -L -t "$2" 2>/dev/null | grep -q "topic \"$2\" with [1-9]"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: N distinct TCP ports on 127.0.0.1 that nobody listens on now (the kernel's picks,
# all held open until the last is chosen, so they differ).
free_ports() {
  python3 -c 'import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}

# http_call METHOD URL [BODY [HEADER...]]: prints "STATUS BODY" on one line; curl retries
# connection failures (the callers send an Idempotency-Key, so a retried POST is safe).
http_call() {
  local method=$1 url=$2 body=${3:-} out status
  shift 2
  if (($# > 0)); then shift; fi
  local -a args=(-sS -m 10 --retry 3 --retry-connrefused --retry-delay 1 -X "${method}"
    -H 'Content-Type: application/json' -w '\n%{http_code}')
  local header
  for header in "$@"; do args+=(-H "${header}"); done
  [[ -n ${body} ]] && args+=(--data "${body}")
  out="$(curl "${args[@]}" "${url}")" || return 1
  status="${out##*$'\n'}"
  printf '%s %s\n' "${status}" "${out%$'\n'*}"
}

# eth_rpc METHOD PARAMS_JSON: the JSON-RPC response from ETH_RPC_URL.
eth_rpc() {
  curl -sS -m 5 -H 'Content-Type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "${ETH_RPC_URL}"
}

# sql QUERY [NAME=VALUE...]: runs QUERY against DATABASE_URL; prints rows unaligned, fields
# separated by '|', no headers. NAME=VALUE become psql variables (:'NAME' in QUERY quotes them).
sql() {
  local query=$1 assignment
  shift
  local -a vars=()
  for assignment in "$@"; do vars+=(-v "${assignment}"); done
  # stdin, not -c: psql interpolates variables only in scripts.
  printf '%s\n' "${query}" | psql "${DATABASE_URL}" -X -A -t -q -v ON_ERROR_STOP=1 "${vars[@]}" -f -
}

# random_address: a fresh random recipient (lower-case hex needs no EIP-55 checksum).
random_address() { printf '0x%s\n' "$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"; }

# progress CURRENT TOTAL LABEL: a bar on a terminal (redrawn in place), otherwise a line at
# every tenth so logs stay short. Call progress_done after the last update.
PROGRESS_LAST_TENTH=-1
progress() {
  local current=$1 total=$2 label=$3 width=40 filled
  ((total > 0)) || total=1
  if [[ -t 2 ]]; then
    filled=$((current * width / total))
    printf '\r[%s] [%-*s] %d/%d %s\033[K' "${OUTBOX_LOG_TAG}" "${width}" \
      "$(printf '%*s' "${filled}" '' | tr ' ' '#')" "${current}" "${total}" "${label}" >&2
  else
    local tenth=$((current * 10 / total))
    if ((tenth != PROGRESS_LAST_TENTH)); then
      PROGRESS_LAST_TENTH=${tenth}
      log "$((tenth * 10))% ${current}/${total} ${label}"
    fi
  fi
}
progress_done() {
  PROGRESS_LAST_TENTH=-1
  if [[ -t 2 ]]; then printf '\n' >&2; fi
}
