#!/usr/bin/env bash
# Soak: steady withdrawals through the wallet's HTTP API with outbox-relay and broadcaster-worker
# running (events mode, Kafka), sampled over time, to show that nothing creeps: the outbox table
# and its indexes, the daemons' memory and the commit -> consumer latency stay flat.
#
#   bench/soak/run.sh [--duration S] [--interval S] [--rate R] [--users U] [--workers W]
#                     [--anvil-rss-limit MIB] [--out DIR]
#
#   --duration  seconds of load (default 1800; scripts/bench --quick passes 180)
#   --interval  seconds between samples, and the latency windows (default 10)
#   --rate      withdrawals per second on a fixed schedule (default 200: what the whole pipeline
#               sustains on the shared 2-core machine; 400 built a backlog; see bench/README.md,
#               "Soak")
#   --users     accounts the load is spread over, credited first through the deposit API (10000)
#   --workers   load processes, each with its own keep-alive connection and slice of the users
#               (default: one per 15 withdrawals/s, 4 to 16; the wallet has 16 HTTP threads)
#   --anvil-rss-limit  stop the run (exit 1) when the chain's anvil is above this many MiB
#               resident (default 4096): a dev chain must not take the shared machine down
#   --out       results (default .local/bench/soak): soak.tsv (one row per sample), PNG plots,
#               summary.md; logs/ holds the daemons' logs
#
# A database of its own (created, migrated, dropped), its own consumer group and DLQ topic, and an
# anvil of its own on a free port (killed by PID at the end), so nothing else on the shared
# services is disturbed. Hot wallet: anvil's dev account #9, as bench/e2e. Needs scripts/services
# (PostgreSQL, Kafka), built binaries (OUTBOX_BUILD_DIR, default build/), gnuplot.
# Progress on stderr; stdout: summary.md, and its path on the last line. Exits 1 if the pipeline
# did not keep up (withdrawals still pending after the load), a request was refused, or anvil
# went above --anvil-rss-limit.
set -euo pipefail

OUTBOX_LOG_TAG=bench-soak
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/stack.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/report.sh"
cd "${OUTBOX_ROOT}"

usage() { sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

out="${OUTBOX_LOCAL}/bench/soak" duration=1800 interval=10 rate=200 users=10000 workers="" anvil_rss_limit=4096
while (($# > 0)); do
  case "$1" in
    --out) out=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --interval) interval=${2:?}; shift ;;
    --rate) rate=${2:?}; shift ;;
    --users) users=${2:?}; shift ;;
    --workers) workers=${2:?}; shift ;;
    --anvil-rss-limit) anvil_rss_limit=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
for value in "${duration}" "${interval}" "${rate}" "${users}" "${workers:-1}" "${anvil_rss_limit}"; do
  [[ ${value} =~ ^[1-9][0-9]*$ ]] || die "--duration, --interval, --rate, --users, --workers and --anvil-rss-limit take positive whole numbers, got '${value}'"
done
((duration >= 4 * interval)) || die "--duration must be at least 4 x --interval (quarters are compared)"
if [[ -z ${workers} ]]; then
  workers=$(((rate + 14) / 15))
  ((workers >= 4)) || workers=4
  ((workers <= 16)) || workers=16
fi
have gnuplot || die "gnuplot is missing (Debian gnuplot-nox; scripts/setup installs it)"
mkdir -p "${out}"
out="$(cd "${out}" && pwd -P)"
STACK_LOG_DIR="${out}/logs"
rm -rf "${STACK_LOG_DIR}" "${out}"/*.tsv "${out}"/*.png "${out}/summary.md"
mkdir -p "${STACK_LOG_DIR}"

bench_services_up postgres kafka
BENCH_NAME=soak
BENCH_RUN_ID="$(bench_new_run_id)"
load_before="$(uptime)"

anvil_pid="" load_pid="" anvil_flags=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n ${load_pid} ]] && kill -0 "${load_pid}" 2>/dev/null; then
    kill -TERM "${load_pid}" 2>/dev/null || true
    wait "${load_pid}" 2>/dev/null || true
  fi
  stack_stop
  if [[ -n ${anvil_pid} ]]; then
    kill -TERM "${anvil_pid}" 2>/dev/null || true
    wait "${anvil_pid}" 2>/dev/null || true
  fi
  bench_drop_databases
  exit "${rc}"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ anvil of our own

# A block every second (--block-time 1), not a block per transaction as the shared anvil mines:
# with automining anvil's own CPU per transaction grows with the number of blocks (measured:
# 1.0 s per 1000 transactions at the start, 4.2 s after 8000, on an otherwise idle anvil), so a
# soak would measure anvil slowing down; with 1-s blocks it stays at ~0.4 s per 1000. A large
# balance, so a long run at a high rate does not drain account #9.
#
# No state history (--prune-history without a number) and the transactions of the last 256
# blocks only (--transaction-block-keeper; the tracker reads receipts 1 + 16 blocks deep). Anvil
# 1.7.1 snapshots the whole state at every block whenever it keeps any state history (the
# default, --prune-history N for any N, --max-persisted-states): with a fresh recipient per
# withdrawal its RSS grew ~0.5-0.7 GiB a minute at 200 transfers/s, with --prune-history 64 or 1
# alike; without history ~25 MiB a minute, ~1 GiB in 30 minutes (bench/soak/anvil_memory.py,
# bench/README.md "Soak"). The load sends each user's withdrawals to one address of their own
# (load.py --own-recipient): anvil's work per block grows with the chain's accounts (2.7 x in 10
# minutes with a fresh one per withdrawal), which the latency would otherwise measure. Without
# history the node answers only at the head: broadcaster-worker asks its nonce N - 1 blocks deep
# when chain.confirmations = N > 1, so then anvil keeps N + 16 states and grows as above (a
# warning says so; --anvil-rss-limit stops the run before the machine runs out).
start_anvil() {
  local port confirmations bin="${OUTBOX_SERVICES_ROOT:-${OUTBOX_LOCAL}}/bin/anvil"
  local -a history=(--prune-history)
  [[ -x ${bin} ]] || die "${bin} is missing (run scripts/setup)"
  confirmations="${BROADCASTER_CHAIN_CONFIRMATIONS:-$(conf_get conf/broadcaster.toml chain.confirmations 12)}"
  [[ ${confirmations} =~ ^[0-9]+$ ]] || die "chain.confirmations (BROADCASTER_CHAIN_CONFIRMATIONS) is not a number: '${confirmations}'"
  if ((confirmations > 1)); then
    history=(--prune-history "$((confirmations + 16))")
    warn "chain.confirmations = ${confirmations}: the soak's anvil keeps ${history[1]} states for the nonce read ${confirmations} blocks deep, and its memory grows with every block (see --anvil-rss-limit)"
  fi
  port="$(free_ports 1)"
  anvil_flags="--block-time 1 ${history[*]} --transaction-block-keeper 256"
  # shellcheck disable=SC2086 # anvil_flags: words by design
  "${bin}" --host 127.0.0.1 --port "${port}" --chain-id 31337 --balance 100000000 --quiet ${anvil_flags} \
    >"${STACK_LOG_DIR}/anvil.log" 2>&1 &
  anvil_pid=$!
  export ETH_RPC_URL="http://127.0.0.1:${port}"
  wait_until 30 "anvil on port ${port}" anvil_ready ||
    die "anvil did not answer on port ${port} (${STACK_LOG_DIR}/anvil.log)"
  log "anvil of our own on port ${port} (pid ${anvil_pid}): ${anvil_flags}"
}
anvil_ready() {
  kill -0 "${anvil_pid}" 2>/dev/null || return 2
  [[ "$(eth_rpc eth_chainId '[]' 2>/dev/null | jq -r .result 2>/dev/null)" == 0x7a69 ]]
}

# ------------------------------------------------------------------ sampling

rss_kib() { # PID -> VmRSS in KiB (0 once the process is gone)
  awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

cpu_s() { # PID -> user + system CPU seconds so far (0 once the process is gone)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# sample ELAPSED: one TSV row of the columns in SAMPLE_HEADER (the latency columns are added at
# the end, from the withdrawals themselves).
readonly SAMPLE_HEADER="elapsed_s	table_bytes	index_bytes	n_dead_tup	n_live_tup	autovacuum_count	last_autovacuum_s	relay_rss_kib	wallet_rss_kib	broadcaster_rss_kib	anvil_rss_kib	pending	relay_cpu_s	wallet_cpu_s	broadcaster_cpu_s	anvil_cpu_s"
sample() {
  local db
  # last_autovacuum as seconds into the run ('-': none yet); pending = withdrawals not yet
  # signed (the relay's and the broadcaster's backlog together).
  db="$(sql "SELECT pg_relation_size('outbox_messages'), pg_indexes_size('outbox_messages'), s.n_dead_tup,
                    s.n_live_tup, s.autovacuum_count,
                    coalesce(round(extract(epoch FROM s.last_autovacuum) - :t0 / 1000.0)::text, '-'),
                    (SELECT count(*) FROM withdrawals WHERE status = 'pending')
               FROM pg_stat_user_tables s WHERE s.relid = 'outbox_messages'::regclass" "t0=${t0_ms}")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' "$1" "$(cut -d'|' -f1-6 <<<"${db}" | tr '|' '\t')" \
    "$(rss_kib "$(stack_pid outbox-relay)")" "$(rss_kib "$(stack_pid wallet-service)")" \
    "$(rss_kib "$(stack_pid broadcaster-worker)")" "$(rss_kib "${anvil_pid}")" "$(cut -d'|' -f7 <<<"${db}")"
  printf '\t%s\t%s\t%s\t%s\n' "$(cpu_s "$(stack_pid outbox-relay)")" "$(cpu_s "$(stack_pid wallet-service)")" \
    "$(cpu_s "$(stack_pid broadcaster-worker)")" "$(cpu_s "${anvil_pid}")"
}

# windows: per latency window (the withdrawals the wallet created in (elapsed - interval, elapsed]):
# created, signed by the broadcaster in the same span of time, and commit -> consumer p50 / p99 /
# max in ms over that window's withdrawals, exact (percentile_disc over every row).
windows() {
  sql "WITH r AS (
         SELECT extract(epoch FROM created_at) * 1000 - :t0 AS created_ms,
                extract(epoch FROM signed_at) * 1000 - :t0 AS signed_ms,
                extract(epoch FROM signed_at - created_at) * 1000 AS latency_ms
           FROM withdrawals WHERE created_at >= to_timestamp(:t0 / 1000.0)),
       c AS (SELECT floor(created_ms / (:iv * 1000))::int + 1 AS w, count(*) AS created,
                    percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                    percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
                    max(latency_ms) AS max
               FROM r GROUP BY 1),
       s AS (SELECT floor(signed_ms / (:iv * 1000))::int + 1 AS w, count(*) AS signed
               FROM r WHERE signed_ms IS NOT NULL GROUP BY 1)
       SELECT c.w * :iv, c.created, coalesce(s.signed, 0), round(c.p50::numeric, 1), round(c.p99::numeric, 1),
              round(c.max::numeric, 1)
         FROM c LEFT JOIN s USING (w) WHERE c.w * :iv <= :duration ORDER BY c.w" \
    "t0=${t0_ms}" "iv=${interval}" "duration=${duration}" | tr '|' '\t'
}

# wait_drained TIMEOUT_S: until no withdrawal is pending; gives up early after 30 s without progress.
wait_drained() {
  local pending last="" still=0 deadline=$(($(now_ms) + $1 * 1000))
  while :; do
    pending="$(sql "SELECT count(*) FROM withdrawals WHERE status = 'pending'")"
    ((pending > 0)) || return 0
    if [[ ${pending} == "${last}" ]]; then still=$((still + 1)); else still=0; fi
    last=${pending}
    if ((still >= 60 || $(now_ms) >= deadline)); then
      warn "${pending} withdrawals still pending after the load"
      return 1
    fi
    sleep 0.5
  done
}

# ------------------------------------------------------------------ run

started=$(now_ms)
start_anvil
fresh_database "bench_soak_${BENCH_RUN_ID//-/_}"
start_daemon wallet-service
start_daemon outbox-relay
start_daemon broadcaster-worker events
warm_up "${out}"

first_user="$(next_user)"
log "crediting ${users} accounts through the deposit API (${workers} workers)"
send 0 1 /dev/null --users "${users}" --first-user "${first_user}" --workers "${workers}" --deposits-only \
  2>>"${STACK_LOG_DIR}/load.log"

count=$((rate * duration))
log "soak: ${rate} withdrawals/s for ${duration}s over ${users} users (${workers} workers), a sample every ${interval}s"
t0_ms=$(now_ms)
send "${count}" "${rate}" "${out}/load.ids" --users "${users}" --first-user "${first_user}" \
  --workers "${workers}" --no-deposits --own-recipient 2>>"${STACK_LOG_DIR}/load.log" &
load_pid=$!

printf '%s\n' "${SAMPLE_HEADER}" >"${out}/samples.tsv"
samples=$((duration / interval))
for ((k = 1; k <= samples; k++)); do
  delay_ms=$((t0_ms + k * interval * 1000 - $(now_ms)))
  if ((delay_ms > 0)); then sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"; fi
  sample $((k * interval)) >>"${out}/samples.tsv"
  progress "${k}" "${samples}" "samples"
  anvil_mib=$(($(rss_kib "${anvil_pid}") / 1024))
  ((anvil_mib <= anvil_rss_limit)) ||
    die "anvil (the dev chain) is at ${anvil_mib} MiB resident, above --anvil-rss-limit ${anvil_rss_limit}, after $((k * interval)) s: stopped before it takes the machine's memory (samples so far in ${out}/samples.tsv)"
  if ! kill -0 "${load_pid}" 2>/dev/null && ((k < samples)); then
    wait "${load_pid}" || die "the load generator failed after $((($(now_ms) - t0_ms) / 1000))s ($(tail -n 3 "${STACK_LOG_DIR}/load.log"))"
  fi
done
progress_done
load_rc=0
wait "${load_pid}" || load_rc=$?
load_pid=""
((load_rc == 0)) || die "the load generator failed ($(tail -n 3 "${STACK_LOG_DIR}/load.log"))"
grep '^\[load\] sent' "${STACK_LOG_DIR}/load.log" | tail -n 1 >&2 || true

drained=1
wait_drained 300 || drained=0
windows >"${out}/windows.tsv"
# soak.tsv: the samples and the latency windows side by side (same elapsed_s).
awk -F'\t' -v OFS='\t' 'NR == FNR { w[$1] = $2 OFS $3 OFS $4 OFS $5 OFS $6; next }
  FNR == 1 { print $0, "created", "signed", "p50_ms", "p99_ms", "max_ms"; next }
  { print $0, ($1 in w ? w[$1] : "0\t0\t-\t-\t-") }' "${out}/windows.tsv" "${out}/samples.tsv" >"${out}/soak.tsv"
rm -f "${out}/samples.tsv" "${out}/windows.tsv"

quarters="$(quarter_latency)"
stack_stop
load_after="$(uptime)"
plot_all
write_summary >"${out}/summary.md"
log "soak done in $(elapsed_since "${started}"); results in ${out#"${OUTBOX_ROOT}"/}"
cat "${out}/summary.md"
printf '%s\n' "${out}/summary.md"
((drained)) || exit 1
