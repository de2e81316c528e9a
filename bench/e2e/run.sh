#!/usr/bin/env bash
# End-to-end benchmark: the seed guide's table, measured. Event-driven (wallet-service ->
# outbox -> outbox-relay -> Kafka -> broadcaster-worker) against the seed's "before"
# (broadcaster-worker polling the withdrawals table, source.mode = "db-poll", every 5 s).
#
#   bench/e2e/run.sh [--out DIR] [--rate R] [--duration S] [--idle S]
#
# 1. Latency: for each mode, R withdrawals/s (default 10) for S seconds (default 30) through
#    the HTTP API; per withdrawal broadcast_at - created_at from the database (commit ->
#    transaction accepted by the node).
# 2. Idle cost: each daemon alone, from 10 s after it is healthy, for S seconds (default 30)
#    with no traffic: transactions/s its database sees
#    (pg_stat_database xact_commit + xact_rollback; one poll or heartbeat is one transaction).
#    The modes' totals: events = wallet + relay + broadcaster(events),
#    db-poll = wallet + broadcaster(db-poll) (the seed's "before" has no relay or broker).
#
# Every measurement runs in a database of its own (created and dropped here), so other users
# of the server do not count. Results in DIR (default .local/bench/e2e): latency-<mode>.tsv
# (ms, one a line), idle.tsv, summary.md. Needs scripts/services up and built binaries
# (OUTBOX_BUILD_DIR, default build/). The hot wallet is anvil's dev account #9 (public,
# well-known test key) so that a demo on account #0 can run beside it.
set -euo pipefail

OUTBOX_LOG_TAG=bench-e2e
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/stack.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
cd "${OUTBOX_ROOT}"

usage() { sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

out="${OUTBOX_LOCAL}/bench/e2e" rate=10 duration=30 idle=30
while (($# > 0)); do
  case "$1" in
    --out) out=${2:?}; shift ;;
    --rate) rate=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --idle) idle=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ ${rate} =~ ^[1-9][0-9]*$ && ${duration} =~ ^[1-9][0-9]*$ && ${idle} =~ ^[1-9][0-9]*$ ]] ||
  die "--rate, --duration and --idle take positive whole numbers"
mkdir -p "${out}"
out="$(cd "${out}" && pwd -P)"
STACK_LOG_DIR="${out}/logs"
mkdir -p "${STACK_LOG_DIR}"

bench_services_up postgres kafka anvil
BENCH_NAME=e2e
BENCH_RUN_ID="$(bench_new_run_id)"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stack_stop
  bench_drop_databases
  exit "${rc}"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ latency

measure_latency() {
  local mode=$1
  local count=$((rate * duration)) db="bench_e2e_${BENCH_RUN_ID//-/_}_${mode//-/_}"
  log "latency, ${mode}: ${count} withdrawals at ${rate}/s"
  fresh_database "${db}"
  start_daemon wallet-service
  # The seed's polling baseline reads the withdrawals table; no relay or broker in its path.
  if [[ ${mode} == events ]]; then start_daemon outbox-relay; fi
  start_daemon broadcaster-worker "${mode}"
  warm_up "${out}"
  send "${count}" "${rate}" "${out}/load-${mode}.ids"
  wait_broadcast "${out}/load-${mode}.ids" 120 ||
    die "${mode}: not every withdrawal was broadcast within 120 s (logs: ${STACK_LOG_DIR})"
  sql "SELECT round((extract(epoch FROM broadcast_at - created_at) * 1000)::numeric, 2)
         FROM withdrawals WHERE id = ANY(:'ids'::bigint[]) ORDER BY 1" \
    "ids={$(paste -sd, "${out}/load-${mode}.ids")}" >"${out}/latency-${mode}.tsv"
  stack_stop
  drop_database "${db}"
}

# ------------------------------------------------------------------ idle

# xacts DB: committed + rolled back transactions of DB so far (read from another database,
# so the reading itself does not count).
xacts() {
  psql "${BENCH_ADMIN_URL}" -X -A -t -q -c \
    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$1'"
}

measure_idle() {
  local label=$1 name=$2 mode=${3:-events} db="bench_e2e_${BENCH_RUN_ID//-/_}_idle"
  log "idle, ${label}: ${idle}s without traffic"
  start_daemon "${name}" "${mode}"
  # Past start-up (pool connections, first poll, consumer join) before counting.
  sleep 10
  local t0 x0 t1 x1 s
  t0=$(now_ms)
  x0=$(xacts "${db}")
  for ((s = 1; s <= idle; s++)); do
    sleep 1
    progress "${s}" "${idle}" "s idle (${label})"
  done
  progress_done
  x1=$(xacts "${db}")
  t1=$(now_ms)
  stack_stop
  awk -v l="${label}" -v d=$((x1 - x0)) -v ms=$((t1 - t0)) 'BEGIN { printf "%s\t%.2f\n", l, d * 1000 / ms }' \
    >>"${out}/idle.tsv"
}

# ------------------------------------------------------------------ run

started=$(now_ms)
rm -f "${out}"/latency-*.tsv "${out}/idle.tsv"
measure_latency events
measure_latency db-poll

fresh_database "bench_e2e_${BENCH_RUN_ID//-/_}_idle"
measure_idle "wallet-service" wallet-service
measure_idle "outbox-relay" outbox-relay
measure_idle "broadcaster-worker (events)" broadcaster-worker events
measure_idle "broadcaster-worker (db-poll ${BENCH_POLL_INTERVAL})" broadcaster-worker db-poll

# ------------------------------------------------------------------ summary

percentiles() { # FILE -> "n p50 p90 p99 max" (nearest rank)
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    n = NR; if (n == 0) { print "0 - - - -"; exit }
    split("50 90 99", q, " "); out = n
    for (i = 1; i <= 3; i++) { r = int((q[i] * n + 99) / 100); if (r < 1) r = 1; out = out " " v[r] }
    print out " " v[n] }'
}
idle_of() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "${out}/idle.tsv"; }

read -r ev_n ev_p50 ev_p90 ev_p99 ev_max <<<"$(percentiles "${out}/latency-events.tsv")"
read -r dp_n dp_p50 dp_p90 dp_p99 dp_max <<<"$(percentiles "${out}/latency-db-poll.tsv")"
w=$(idle_of "wallet-service")
r=$(idle_of "outbox-relay")
be=$(idle_of "broadcaster-worker (events)")
bp=$(idle_of "broadcaster-worker (db-poll ${BENCH_POLL_INTERVAL})")
events_total=$(awk -v a="${w}" -v b="${r}" -v c="${be}" 'BEGIN { printf "%.2f", a + b + c }')
poll_total=$(awk -v a="${w}" -v c="${bp}" 'BEGIN { printf "%.2f", a + c }')
printf 'event-driven total\t%s\ndb-poll total\t%s\n' \
  "${events_total}" "${poll_total}" >"${out}/idle-totals.tsv"

{
  echo "### Commit → broadcast latency"
  echo
  echo "${rate} withdrawals/s for ${duration} s through the HTTP API, per mode; latency = \`broadcast_at - created_at\`"
  echo "(the withdrawal's transaction start to the node accepting the signed transaction), in ms."
  echo
  echo "| mode | n | p50 | p90 | p99 | max |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  echo "| event-driven (outbox → relay → Kafka → broadcaster) | ${ev_n} | ${ev_p50} | ${ev_p90} | ${ev_p99} | ${ev_max} |"
  echo "| db-poll every ${BENCH_POLL_INTERVAL} (the seed's \"before\") | ${dp_n} | ${dp_p50} | ${dp_p90} | ${dp_p99} | ${dp_max} |"
  echo
  echo "### Idle database load"
  echo
  echo "Transactions/s the database sees from each daemon alone with no traffic, over ${idle} s"
  echo "(\`pg_stat_database\` xact_commit + xact_rollback of a database only that daemon uses)."
  echo
  echo "| daemon | transactions/s |"
  echo "| --- | ---: |"
  while IFS=$'\t' read -r label value; do echo "| ${label} | ${value} |"; done <"${out}/idle.tsv"
  echo "| **event-driven total** (wallet + relay + broadcaster events) | **${events_total}** |"
  echo "| **db-poll total** (wallet + broadcaster db-poll) | **${poll_total}** |"
  echo
  echo "An idle relay's transactions are its fallback poll (\`outbox.poll_interval\`, 1 s; LISTEN wakes it"
  echo "for new rows) and its partition-lease upkeep. Both broadcaster modes run the same periodic work"
  echo "(the confirmation tracker reads the database every \`chain.confirm_poll_interval\`, 1 s); db-poll"
  echo "adds one claim query per \`source.poll_interval\` (${BENCH_POLL_INTERVAL})."
} >"${out}/summary.md"
cat "${out}/summary.md"
log "e2e benchmark done in $(elapsed_since "${started}"); results in ${out#"${OUTBOX_ROOT}"/}"
