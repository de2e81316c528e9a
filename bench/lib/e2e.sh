# shellcheck shell=bash
# What bench/e2e/run.sh and bench/soak/run.sh share: the services, a fresh database per
# measurement, the three daemons on ephemeral ports against it, paced withdrawals through the
# wallet's HTTP API (bench/e2e/load.py) and the wait until they are broadcast.
# Source it after scripts/lib/common.sh and scripts/lib/stack.sh, then set:
#   BENCH_NAME    short name of the benchmark (e2e, soak): the broadcaster's consumer group is
#                 bench-NAME-RUN-MODE and its DLQ topic bench_NAME_RUN.dlq, so runs never share them
#   BENCH_RUN_ID  unique per run (bench_new_run_id)
# and call bench_services_up first (it sets BENCH_ADMIN_URL). bench_drop_databases drops every
# database fresh_database made (call it from the EXIT trap).
#
# The hot wallet is anvil's dev account #9 (public, well-known test key) so that a demo on
# account #0 can run beside it. The broadcaster reaches anvil through ETH_RPC_URL (from
# `scripts/services env`; export another URL before start_daemon to use another node).

# anvil dev account #9 (0xa0Ee7A142d267C1f36714E4a8F75612F20a79720): public test key.
readonly BENCH_SIGNING_KEY=0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6
# The broadcaster's db-poll interval (the seed's "before").
readonly BENCH_POLL_INTERVAL=5s

BENCH_NAME=""
BENCH_RUN_ID=""
BENCH_ADMIN_URL=""
BENCH_DATABASES=()
# PORT[daemon]: the HTTP port start_daemon found in its log.
declare -gA PORT=()

bench_new_run_id() { printf '%s-%s\n' "$(date +%Y%m%d%H%M%S)" "$$"; }

# bench_services_up SERVICE...: starts the services (no-op for running ones) and exports their
# endpoints. OUTBOX_SERVICES_SCRIPT (set by `scripts/services env`) wins over this checkout's
# script, so a run from a git worktree uses the instances the main checkout runs.
bench_services_up() {
  local services="${OUTBOX_SERVICES_SCRIPT:-${OUTBOX_ROOT}/scripts/services}"
  "${services}" up "$@"
  eval "$("${services}" env)"
  BENCH_ADMIN_URL=${DATABASE_URL}
}

# fresh_database NAME: creates and migrates NAME and points DATABASE_URL at it. Withdrawal ids
# start at a random large number: the wallet's topic is shared with anything else on this
# broker, and an event from elsewhere must never name one of our withdrawals.
fresh_database() {
  local db=$1
  BENCH_DATABASES+=("${db}")
  psql "${BENCH_ADMIN_URL}" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE ${db}" >/dev/null
  export DATABASE_URL="${BENCH_ADMIN_URL%/*}/${db}"
  "${STACK_BIN_DIR}/walletctl" migrate up >"${STACK_LOG_DIR}/migrate-${db}.log" 2>&1 ||
    die "walletctl migrate up failed on ${db} (${STACK_LOG_DIR}/migrate-${db}.log)"
  sql "ALTER TABLE withdrawals ALTER COLUMN id RESTART WITH $((RANDOM * 32768 * 32768 + RANDOM * 32768 + RANDOM + 1000000000))"
}

drop_database() {
  psql "${BENCH_ADMIN_URL}" -X -q -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}

bench_drop_databases() {
  local db
  for db in "${BENCH_DATABASES[@]}"; do drop_database "${db}" 2>/dev/null || true; done
  BENCH_DATABASES=()
}

# start_daemon NAME [MODE]: one daemon on an ephemeral port, against DATABASE_URL; sets PORT[NAME].
start_daemon() {
  local name=$1 mode=${2:-events}
  case "${name}" in
    wallet-service) stack_start "${name}" WALLET_HTTP_PORT=0 WALLET_GRPC_PORT=0 -- wallet-service --config conf/wallet.toml ;;
    outbox-relay) stack_start "${name}" RELAY_HTTP_PORT=0 -- outbox-relay --config conf/relay.toml ;;
    broadcaster-worker)
      # A group of our own that starts at the topic's end; a DLQ of our own.
      stack_start "${name}" BROADCASTER_HTTP_PORT=0 "BROADCASTER_SIGNING_KEY=${BENCH_SIGNING_KEY}" \
        "BROADCASTER_SOURCE_MODE=${mode}" "BROADCASTER_SOURCE_POLL_INTERVAL=${BENCH_POLL_INTERVAL}" \
        "BROADCASTER_CONSUMER_GROUP=bench-${BENCH_NAME}-${BENCH_RUN_ID}-${mode}" \
        "BROADCASTER_CONSUMER_DLQ_TOPIC=bench_${BENCH_NAME}_${BENCH_RUN_ID//-/_}.dlq" \
        "BROADCASTER_KAFKA_PROPERTIES=auto.offset.reset=latest" \
        -- broadcaster-worker --config conf/broadcaster.toml
      ;;
    *) die "start_daemon: unknown daemon ${name}" ;;
  esac
  PORT[${name}]="$(stack_port "${name}" 30)"
  stack_wait_healthy "${name}" "http://127.0.0.1:${PORT[${name}]}/healthz" 60
}

next_user() { sql "SELECT coalesce(max(user_id), 0) + 1 FROM accounts"; }

# send COUNT RATE IDS_FILE [LOAD_OPTION...]: COUNT paced withdrawals through the wallet's API
# from fresh users (20 unless a --users option follows; later options win).
send() {
  local count=$1 rate=$2 ids=$3
  shift 3
  python3 bench/e2e/load.py "http://127.0.0.1:${PORT[wallet-service]}" --count "${count}" --rate "${rate}" \
    --users 20 --first-user "$(next_user)" --run-id "${BENCH_RUN_ID}-$(now_ms)" --ids-out "${ids}" "$@"
}

# wait_broadcast IDS_FILE TIMEOUT_S: until every listed withdrawal has broadcast_at.
wait_broadcast() {
  local ids total done_count deadline
  ids="{$(paste -sd, "$1")}"
  total=$(wc -l <"$1")
  deadline=$(($(now_ms) + $2 * 1000))
  while :; do
    done_count="$(sql "SELECT count(*) FROM withdrawals WHERE id = ANY(:'ids'::bigint[]) AND broadcast_at IS NOT NULL" "ids=${ids}")"
    progress "${done_count}" "${total}" "broadcast"
    ((done_count < total)) || break
    if (($(now_ms) >= deadline)); then
      progress_done
      return 1
    fi
    sleep 0.5
  done
  progress_done
}

# warm_up DIR: one withdrawal end to end (its ids in DIR/warmup.ids). With
# auto.offset.reset=latest an event sent before the consumer has its partitions is skipped, so
# try again until one gets through.
warm_up() {
  local attempt
  for attempt in 1 2 3 4 5 6; do
    send 1 1 "$1/warmup.ids" 2>/dev/null
    if wait_broadcast "$1/warmup.ids" 15 2>/dev/null; then return 0; fi
    log "warm-up ${attempt}: not broadcast yet (consumer joining?), again"
  done
  die "no warm-up withdrawal was broadcast; see ${STACK_LOG_DIR}"
}
