#!/usr/bin/env bash
# wallet-service benchmark: withdrawals/s and p50/p99 latency through the HTTP API and the gRPC API
# (CreateWithdrawal), both driven the same way by one load client (bench/wallet/wallet_load.cpp),
# at 8, 32 and 64 concurrent clients, beside pgbench running the
# same SQL transaction (withdraw.sql) at the same client counts, against the same database, in the
# same run: each row interleaves the three in rounds. Targets: gRPC >= HTTP at every client count; both >= 0.8 x pgbench at 8 clients.
# Prints a markdown table and writes it into bench/README.md under "## wallet-service" (that
# section only), and into $BENCH_OUT_DIR/summary.md when scripts/bench runs it.
#
#   bench/wallet/run.sh [BUILD_DIR]       BUILD_DIR defaults to $OUTBOX_BUILD_DIR, else build/
#
# Environment: BENCH_SECONDS (per system and row, default 20), BENCH_ROUNDS (rounds they are split
# into, default 4), BENCH_CLIENTS (default "8 32 64"),
# BENCH_USERS (accounts the load spreads over, default 10000), NO_README=1 (print only),
# BENCH_MACHINE_NOTE (what else ran on the machine, printed with the load averages; say it when
# something did),
# BENCH_LOAD_THREADS (the load client's threads, default 1).
# Needs the services (`scripts/services up`) and a build with the benchmarks (OUTBOX_BUILD_TESTS=ON,
# as the ci and release presets): wallet_load is built with wallet-service.
# Everything runs in a schema of its own, dropped at the end.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../lib/readme_section.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="${root}/bench/wallet"
build_arg="${1:-${OUTBOX_BUILD_DIR:-build}}"
[[ ${build_arg} == /* ]] || build_arg="${root}/${build_arg}"
build="$(cd "${build_arg}" && pwd)"
seconds="${BENCH_SECONDS:-20}"
read -ra client_counts <<<"${BENCH_CLIENTS:-8 32 64}"
users="${BENCH_USERS:-10000}"
load_threads="${BENCH_LOAD_THREADS:-1}"
readme="${root}/bench/README.md"
out="${BENCH_OUT_DIR:-$(mktemp -d /tmp/wallet-bench.XXXXXX)}"
mkdir -p "${out}"

log() { printf '[bench/wallet] %s\n' "$*" >&2; }

command -v pgbench >/dev/null || { log "pgbench is missing (Debian postgresql-client)"; exit 1; }

# The services of this checkout, or of the one OUTBOX_SERVICES_SCRIPT names (a worktree shares them).
services="${OUTBOX_SERVICES_SCRIPT:-${root}/scripts/services}"
eval "$("${services}" env)"
"${services}" up postgres >&2
cmake --build "${build}" -j2 --target wallet-service wallet_load >&2
load_client="${build}/bench-bin/wallet_load"

schema="wallet_bench_$$"
sep='?'
[[ ${DATABASE_URL} == *\?* ]] && sep='&'
url="${DATABASE_URL}${sep}options=-csearch_path%3D${schema}"
wallet_pid=""
cleanup() {
  if [[ -n ${wallet_pid} ]] && kill -0 "${wallet_pid}" 2>/dev/null; then
    kill -TERM "${wallet_pid}"
    wait "${wallet_pid}" || true
  fi
  psql "${DATABASE_URL}" -XqAt -c "DROP SCHEMA IF EXISTS ${schema} CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "schema ${schema}: migrations, ${users} accounts"
psql "${DATABASE_URL}" -XqAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA ${schema}" >/dev/null
for migration in "${root}"/sql/migrations/*.up.sql; do
  psql "${url}" -XqAt -v ON_ERROR_STOP=1 -1 -f "${migration}" >/dev/null
done
psql "${url}" -XqAt -v ON_ERROR_STOP=1 \
  -c "INSERT INTO accounts (user_id, balance) SELECT g, 1000000 FROM generate_series(1, ${users}) g" \
  -c "ANALYZE" >/dev/null

log "starting wallet-service (conf/wallet.toml, pool and threads as configured, gRPC on a free port)"
DATABASE_URL="${url}" WALLET_HTTP_PORT=0 WALLET_GRPC_PORT=0 WALLET_LOG_LEVEL=info \
  "${build}/bin/wallet-service" --config "${root}/conf/wallet.toml" >"${out}/wallet-service.log" 2>&1 &
wallet_pid=$!
port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's|.*listening on http://.*:\([0-9][0-9]*\).*|\1|p' "${out}/wallet-service.log" | head -n1)"
  [[ -n ${port} ]] && break
  kill -0 "${wallet_pid}" 2>/dev/null || { cat "${out}/wallet-service.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n ${port} ]] || { log "wallet-service did not log its port"; cat "${out}/wallet-service.log" >&2; exit 1; }
grpc_port="$(sed -n 's|.*listening on grpc://.*:\([0-9][0-9]*\).*|\1|p' "${out}/wallet-service.log" | head -n1)"
[[ -n ${grpc_port} ]] || { log "wallet-service did not log its gRPC port"; cat "${out}/wallet-service.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
pool_size="$(curl -fsS "http://127.0.0.1:${port}/metrics" | awk '$1 == "wallet_db_pool_size" { print $2 }')"

# Percentile (ms) of latencies in µs: percentile P FIELD FILE... (FIELD: the column holding them).
percentile() {
  local p=$1 field=$2
  shift 2
  cat "$@" | awk -v f="${field}" '{ print $f }' | sort -n | awk -v p="${p}" '
    { v[NR] = $1 } END { if (NR == 0) { print "?"; exit } i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", v[i] / 1000 }'
}
# A result line of wallet_load's output: result_of NAME FILE.
result_of() { awk -v name="$1" '$1 == "result" && $2 == name { print $3 }' "$2"; }
# Sum of numbers: sum N...
sum() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.6f", s }'; }

# run_load API CLIENTS SECONDS WARMUP FILE: the same withdrawals through either API, by
# wallet_load: CLIENTS closed-loop clients, one call outstanding each, a fresh idempotency key per
# call, users drawn from 1..BENCH_USERS; HTTP over one keep-alive connection per client, gRPC over
# min(CLIENTS, 4) HTTP/2 connections (gRPC clients multiplex; one connection would serialise the
# reads on one server thread). Latencies of the measured calls go to FILE.lat. It exits non-zero
# on any answer but a created withdrawal, which fails the run. Sets server_cpu_ms to
# wallet-service's CPU ms over the invocation (warm-up included).
clock_ticks="$(getconf CLK_TCK)"
server_cpu_now() { awk -v hz="${clock_ticks}" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/${wallet_pid}/stat"; }
server_cpu_ms=0
run_load() {
  local port="${port}"
  [[ $1 == grpc ]] && port="${grpc_port}"
  local cpu_before
  cpu_before="$(server_cpu_now)"
  if ! "${load_client}" --api "$1" --port "${port}" --clients "$2" --seconds "$3" --warmup "$4" --users "${users}" \
    --threads "${load_threads}" --connections 4 --latencies "$5.lat" >"$5" 2>&1; then
    log "$1 run at $2 clients had failures: see $5"
    cat "$5" >&2
    exit 1
  fi
  server_cpu_ms=$(($(server_cpu_now) - cpu_before))
}

# run_pgbench CLIENTS SECONDS FILE: pgbench running withdraw.sql, its per-transaction log in FILE.log.*
run_pgbench() {
  local threads=2
  (($1 < threads)) && threads=$1
  pgbench -n -M prepared -c "$1" -j "${threads}" -T "$2" -D users="${users}" \
    -f "${here}/withdraw.sql" -l --log-prefix="$3.log" "${url}" >"$3" 2>&1
  local failed
  failed="$(awk '/number of failed transactions:/ { print $5 }' "$3")"
  [[ -z ${failed} || ${failed} == 0 ]] || { log "pgbench had ${failed} failed transactions: see $3"; exit 1; }
}

# Warm-up, not measured: the pool opens its connections and prepares its statements lazily.
log "warm-up: 5 s of HTTP and 5 s of gRPC load"
run_load http "${client_counts[-1]}" 5 0 "${out}/http-warmup.txt"
run_load grpc "${client_counts[-1]}" 5 0 "${out}/grpc-warmup.txt"

# figures API: "<w/s>|<p50 ms>|<p99 ms>|<CPU ms/call service + client>" of the row of $clients
figures() {
  local calls
  # shellcheck disable=SC2086 # word lists of numbers
  calls="$(sum ${answered_calls[$1]})"
  # shellcheck disable=SC2086
  printf '%s|%s|%s|%s' "$(awk -v n="$(sum ${ok_calls[$1]})" -v t="$((rounds * slice))" 'BEGIN { printf "%.0f", n / t }')" \
    "$(percentile 50 1 "${out}/$1-${clients}-"*.txt.lat)" "$(percentile 99 1 "${out}/$1-${clients}-"*.txt.lat)" \
    "$(awk -v s="$(sum ${server_ms[$1]})" -v c="$(sum ${client_ms[$1]})" -v n="${calls}" \
      'BEGIN { printf "%.3f + %.3f", s / n, c / n }')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# verdict RATIO MINIMUM
verdict() { awk -v r="$1" -v m="$2" 'BEGIN { print (r >= m) ? "met" : "**missed**" }'; }

# Each row interleaves the three systems in rounds of ${slice} s each, the order turning every
# round, so that a drift of the machine's speed during the row (other tenants of its host) falls
# on all three alike. Rates: measured calls over measured time, all rounds together; percentiles
# over all rounds' calls.
rounds="${BENCH_ROUNDS:-4}"
slice=$(((seconds + rounds - 1) / rounds))
systems=(http grpc pgbench)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for clients in "${client_counts[@]}"; do
  row_load="$(cut -d' ' -f1-3 /proc/loadavg)"
  log "${clients} clients: ${rounds} rounds of HTTP, gRPC and pgbench, ${slice} s each (API runs after 1 s unmeasured), load average ${row_load}"
  declare -A ok_calls=() server_ms=() answered_calls=() client_ms=()
  pg_tps=()
  for ((round = 0; round < rounds; round++)); do
    for ((i = 0; i < 3; i++)); do
      system="${systems[$(((round + i) % 3))]}"
      file="${out}/${system}-${clients}-${round}.txt"
      if [[ ${system} == pgbench ]]; then
        run_pgbench "${clients}" "${slice}" "${file}"
        pg_tps+=("$(awk '/^tps = / { print $3; exit }' "${file}")")
        continue
      fi
      run_load "${system}" "${clients}" "${slice}" 1 "${file}"
      answered="$(result_of answered "${file}")"
      ok_calls[${system}]="${ok_calls[${system}]:-0} $(result_of ok "${file}")"
      server_ms[${system}]="${server_ms[${system}]:-0} ${server_cpu_ms}"
      answered_calls[${system}]="${answered_calls[${system}]:-0} ${answered}"
      client_ms[${system}]="${client_ms[${system}]:-0} $(awk -v a="${answered}" \
        -v c="$(result_of client_cpu_ms_per_call "${file}")" 'BEGIN { printf "%.3f", a * c }')"
    done
  done
  IFS='|' read -r api_rps api_p50 api_p99 api_cpu <<<"$(figures http)"
  IFS='|' read -r grpc_rps grpc_p50 grpc_p99 grpc_cpu <<<"$(figures grpc)"
  pg_rate="$(printf '%s\n' "${pg_tps[@]}" | awk '{ s += $1 } END { printf "%.0f", s / NR }')"
  pg_p50="$(percentile 50 3 "${out}/pgbench-${clients}-"*.txt.log*)"
  pg_p99="$(percentile 99 3 "${out}/pgbench-${clients}-"*.txt.log*)"

  grpc_http="$(ratio "${grpc_rps}" "${api_rps}")"
  http_pg="$(ratio "${api_rps}" "${pg_rate}")"
  grpc_pg="$(ratio "${grpc_rps}" "${pg_rate}")"
  if ((clients == 8)); then
    http_pg="${http_pg} $(verdict "${http_pg}" 0.8)"
    grpc_pg="${grpc_pg} $(verdict "${grpc_pg}" 0.8)"
  fi
  rows+=("| ${clients} | ${api_rps} | ${api_p50} | ${api_p99} | ${grpc_rps} | ${grpc_p50} | ${grpc_p99} | ${pg_rate} | ${pg_p50} | ${pg_p99} | ${grpc_http} $(verdict "${grpc_http}" 1.0) | ${http_pg} | ${grpc_pg} | ${api_cpu} | ${grpc_cpu} | ${row_load} |")
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# Every successful API withdrawal committed exactly one outbox row.
consistency="$(psql "${url}" -XAt -c "SELECT (SELECT count(*) FROM withdrawals) = (SELECT count(*) FROM outbox_messages)
  AND (SELECT sum(1000000 - balance) FROM accounts) = (SELECT sum(amount) FROM withdrawals)")"
[[ ${consistency} == t ]] || { log "withdrawals, outbox rows and debits disagree"; exit 1; }

pg_version="$(psql "${DATABASE_URL}" -XAtc 'SHOW server_version' | cut -d' ' -f1)"
# shellcheck source=/dev/null
os="$(. /etc/os-release && echo "${PRETTY_NAME}")"
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
mem_gib="$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"

cat >"${out}/summary.md" <<EOF
## wallet-service

Measured $(date -u +%Y-%m-%d) by \`bench/wallet/run.sh\`, all in one run on one machine: $(nproc) cores
(${cpu:-unknown CPU}), ${mem_gib} GiB RAM, ${os}, PostgreSQL ${pg_version} from \`scripts/services\`
(fsync and synchronous_commit on). The load generators run on the same 2 cores as the database and
the service, and ${BENCH_MACHINE_NOTE:-nothing else was started on the machine for the run} (load average ${load_before}
before, ${load_after} after): compare the columns, do not plan capacity from them.

After a 5 s warm-up of each API (not measured), each row measures three systems for ${seconds} s each,
interleaved: ${rounds} rounds of ${slice} s of each, the order turning every round, so that a drift of
the shared host's speed during the row falls on all three alike. \`POST /v1/withdrawals\` through the HTTP
API and the same withdrawals through gRPC \`wallet.v1.WalletService/CreateWithdrawal\` are both driven
by \`bench/wallet/wallet_load\` (C++, ${load_threads} client thread(s)) the same way: as many closed-loop
clients as the row says, one call outstanding each, a fresh idempotency key per call, users drawn from
${users} accounts, 1 s unmeasured before each round's measurement; HTTP over one keep-alive connection per
client, gRPC over at most 4 HTTP/2 connections (async stub). pgbench runs \`bench/wallet/withdraw.sql\` —
the same transaction, statement for statement, prepared — with as many clients against the same schema.
wallet-service ran with \`conf/wallet.toml\` (pool of ${pool_size} connections, as many HTTP threads and
gRPC handler threads), so at 32 and 64 clients its requests queue for the pool while pgbench opens one
connection per client. Rates: calls (transactions) over the measured time of all rounds. Latency: the
load client's from request sent to answer read, pgbench's per transaction, over all rounds' calls.
Targets: gRPC withdrawals/s ≥ HTTP's at every client count, and both ≥ 0.8 × pgbench tps at 8 clients
(on a quiet machine). CPU ms/call: wallet-service's CPU time (from /proc) and the load client's over
each API's rounds, per answered call (warm-ups included).

| clients | HTTP w/s | HTTP p50 ms | HTTP p99 ms | gRPC w/s | gRPC p50 ms | gRPC p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | gRPC / HTTP (≥ 1) | HTTP / pgbench | gRPC / pgbench | HTTP CPU ms/call (service + client) | gRPC CPU ms/call (service + client) | load avg before the row |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

After the run the schema is checked: one outbox row per withdrawal, and the accounts were debited
exactly the sum of the withdrawals. Raw load-client and pgbench output went to \`${out}\` (not committed).
EOF
cat "${out}/summary.md"
readme_section "${readme}" "${out}/summary.md"
