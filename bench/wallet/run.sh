#!/usr/bin/env bash
# wallet-service benchmark: withdrawals/s and p50/p99 latency through the HTTP API and the gRPC API
# (CreateWithdrawal), both driven the same way by one load client (bench/wallet/wallet_load.cpp),
# at 8, 32 and 64 concurrent clients, beside pgbench running the
# same SQL transaction (withdraw.sql) at the same client counts, against the same database, in the
# same run. Targets: gRPC >= HTTP at every client count; both >= 0.8 x pgbench at 8 clients.
# Prints a markdown table and writes it into bench/README.md under "## wallet-service" (that
# section only), and into $BENCH_OUT_DIR/summary.md when scripts/bench runs it.
#
#   bench/wallet/run.sh [BUILD_DIR]       BUILD_DIR defaults to $OUTBOX_BUILD_DIR, else build/
#
# Environment: BENCH_SECONDS (per measurement, default 20), BENCH_CLIENTS (default "8 32 64"),
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

# Percentile (ms) of pgbench's per-transaction log (4th field: latency in us).
pg_percentile() {
  local p=$1
  shift
  cat "$@" | awk '{ print $3 }' | sort -n | awk -v p="${p}" '
    { v[NR] = $1 } END { if (NR == 0) { print "?"; exit } i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", v[i] / 1000 }'
}

# wallet_load: API CLIENTS SECONDS WARMUP FILE. The same withdrawals through either API: CLIENTS
# closed-loop clients, one call outstanding each, a fresh idempotency key per call, users drawn from
# 1..BENCH_USERS; HTTP over one keep-alive connection per client, gRPC over min(CLIENTS, 4) HTTP/2
# connections (gRPC clients multiplex; one connection would serialise the reads on one server
# thread). It exits non-zero on any answer but a created withdrawal, which fails the run.
# Sets cpu_per_call to "<server> + <client>": wallet-service's and the load client's CPU ms per
# answered call over the whole invocation (warm-up included), which the shared machine's noise
# disturbs far less than the rates.
clock_ticks="$(getconf CLK_TCK)"
server_cpu_ms() { awk -v hz="${clock_ticks}" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/${wallet_pid}/stat"; }
cpu_per_call=""
run_load() {
  local port="${port}"
  [[ $1 == grpc ]] && port="${grpc_port}"
  local cpu_before
  cpu_before="$(server_cpu_ms)"
  if ! "${load_client}" --api "$1" --port "${port}" --clients "$2" --seconds "$3" --warmup "$4" --users "${users}" \
    --threads "${load_threads}" --connections 4 >"$5" 2>&1; then
    log "$1 run at $2 clients had failures: see $5"
    cat "$5" >&2
    exit 1
  fi
  cpu_per_call="$(awk -v before="${cpu_before}" -v after="$(server_cpu_ms)" \
    -v calls="$(result_of answered "$5")" -v client="$(result_of client_cpu_ms_per_call "$5")" \
    'BEGIN { printf "%.3f + %.3f", (after - before) / calls, client }')"
}
# A result line of wallet_load's output: result_of NAME FILE.
result_of() { awk -v name="$1" '$1 == "result" && $2 == name { print $3 }' "$2"; }

# Warm-up, not measured: the pool opens its connections and prepares its statements lazily.
log "warm-up: 5 s of HTTP and 5 s of gRPC load"
run_load http "${client_counts[-1]}" 5 0 "${out}/http-warmup.txt"
run_load grpc "${client_counts[-1]}" 5 0 "${out}/grpc-warmup.txt"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for clients in "${client_counts[@]}"; do
  threads=2
  ((clients < threads)) && threads=${clients}
  row_load="$(cut -d' ' -f1-3 /proc/loadavg)"
  log "${clients} clients: HTTP API (${seconds}s after 2 s unmeasured), load average ${row_load}"
  run_load http "${clients}" "${seconds}" 2 "${out}/http-${clients}.txt"
  api_rps="$(result_of ok_per_s "${out}/http-${clients}.txt")"
  api_p50="$(printf '%.2f' "$(result_of p50_ms "${out}/http-${clients}.txt")")"
  api_p99="$(printf '%.2f' "$(result_of p99_ms "${out}/http-${clients}.txt")")"
  api_cpu="${cpu_per_call}"

  log "${clients} clients: gRPC (${seconds}s after 2 s unmeasured)"
  run_load grpc "${clients}" "${seconds}" 2 "${out}/grpc-${clients}.txt"
  grpc_rps="$(result_of ok_per_s "${out}/grpc-${clients}.txt")"
  grpc_p50="$(printf '%.2f' "$(result_of p50_ms "${out}/grpc-${clients}.txt")")"
  grpc_p99="$(printf '%.2f' "$(result_of p99_ms "${out}/grpc-${clients}.txt")")"
  grpc_cpu="${cpu_per_call}"

  log "${clients} clients: pgbench (same transaction, ${seconds}s)"
  rm -rf "${out}/pgbench-log-${clients}"
  mkdir -p "${out}/pgbench-log-${clients}"
  pgbench -n -M prepared -c "${clients}" -j "${threads}" -T "${seconds}" -D users="${users}" \
    -f "${here}/withdraw.sql" -l --log-prefix="${out}/pgbench-log-${clients}/tx" "${url}" >"${out}/pgbench-${clients}.txt" 2>&1
  pg_tps="$(awk '/^tps = / { print $3; exit }' "${out}/pgbench-${clients}.txt")"
  pg_failed="$(awk '/number of failed transactions:/ { print $5 }' "${out}/pgbench-${clients}.txt")"
  [[ -z ${pg_failed} || ${pg_failed} == 0 ]] || { log "pgbench had ${pg_failed} failed transactions"; exit 1; }
  pg_p50="$(pg_percentile 50 "${out}/pgbench-log-${clients}"/tx.*)"
  pg_p99="$(pg_percentile 99 "${out}/pgbench-log-${clients}"/tx.*)"

  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  # verdict RATIO MINIMUM
  verdict() { awk -v r="$1" -v m="$2" 'BEGIN { print (r >= m) ? "met" : "**missed**" }'; }
  grpc_http="$(ratio "${grpc_rps}" "${api_rps}")"
  http_pg="$(ratio "${api_rps}" "${pg_tps}")"
  grpc_pg="$(ratio "${grpc_rps}" "${pg_tps}")"
  if ((clients == 8)); then
    http_pg="${http_pg} $(verdict "${http_pg}" 0.8)"
    grpc_pg="${grpc_pg} $(verdict "${grpc_pg}" 0.8)"
  fi
  rows+=("| ${clients} | $(printf '%.0f' "${api_rps}") | ${api_p50} | ${api_p99} | $(printf '%.0f' "${grpc_rps}") | ${grpc_p50} | ${grpc_p99} | $(printf '%.0f' "${pg_tps}") | ${pg_p50} | ${pg_p99} | ${grpc_http} $(verdict "${grpc_http}" 1.0) | ${http_pg} | ${grpc_pg} | ${api_cpu} | ${grpc_cpu} | ${row_load} |")
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

After a 5 s warm-up of each API (not measured), each row: ${seconds} s of \`POST /v1/withdrawals\` through
the HTTP API, then ${seconds} s of the same withdrawals through gRPC \`wallet.v1.WalletService/CreateWithdrawal\`,
both driven by \`bench/wallet/wallet_load\` (C++, ${load_threads} client thread(s)) the same way: as many
closed-loop clients as the row says, one call outstanding each, a fresh idempotency key per call, users
drawn from ${users} accounts, 2 s unmeasured before each measurement; HTTP over one keep-alive
connection per client, gRPC over at most 4 HTTP/2 connections (async stub). Then ${seconds} s of pgbench
running \`bench/wallet/withdraw.sql\` — the same transaction, statement for statement, prepared — with as
many clients against the same schema. wallet-service ran with \`conf/wallet.toml\` (pool of ${pool_size}
connections, as many HTTP threads and gRPC handler threads), so at 32 and 64 clients its requests queue
for the pool while pgbench opens one connection per client. Latency: the load client's from request
sent to answer read; pgbench's per transaction. Targets: gRPC withdrawals/s ≥ HTTP's at every client
count, and both ≥ 0.8 × pgbench tps at 8 clients (on a quiet machine). CPU ms/call: wallet-service's
CPU time (from /proc) and the load client's over each API's run, per answered call (warm-up included).

| clients | HTTP w/s | HTTP p50 ms | HTTP p99 ms | gRPC w/s | gRPC p50 ms | gRPC p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | gRPC / HTTP (≥ 1) | HTTP / pgbench | gRPC / pgbench | HTTP CPU ms/call (service + client) | gRPC CPU ms/call (service + client) | load avg before the row |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

After the run the schema is checked: one outbox row per withdrawal, and the accounts were debited
exactly the sum of the withdrawals. Raw load-client and pgbench output went to \`${out}\` (not committed).
EOF
cat "${out}/summary.md"
readme_section "${readme}" "${out}/summary.md"
