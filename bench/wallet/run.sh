#!/usr/bin/env bash
# wallet-service benchmark: withdrawals/s and p50/p99 latency through the HTTP API (wrk) at 8, 32
# and 64 concurrent clients, beside pgbench running the same SQL transaction (withdraw.sql) at the
# same client counts, against the same database, in the same run. Target: API >= 0.7 x pgbench.
# Prints a markdown table and writes it into bench/README.md under "## wallet-service" (that
# section only), and into $BENCH_OUT_DIR/summary.md when scripts/bench runs it.
#
#   bench/wallet/run.sh [BUILD_DIR]       BUILD_DIR defaults to $OUTBOX_BUILD_DIR, else build/
#
# Environment: BENCH_SECONDS (per measurement, default 20), BENCH_CLIENTS (default "8 32 64"),
# BENCH_USERS (accounts the load spreads over, default 10000), NO_README=1 (print only).
# Needs the services (`scripts/services up`) and wrk (installed with apt-get when missing).
# Everything runs in a schema of its own, dropped at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="${root}/bench/wallet"
build_arg="${1:-${OUTBOX_BUILD_DIR:-build}}"
[[ ${build_arg} == /* ]] || build_arg="${root}/${build_arg}"
build="$(cd "${build_arg}" && pwd)"
seconds="${BENCH_SECONDS:-20}"
read -ra client_counts <<<"${BENCH_CLIENTS:-8 32 64}"
users="${BENCH_USERS:-10000}"
readme="${root}/bench/README.md"
out="${BENCH_OUT_DIR:-$(mktemp -d /tmp/wallet-bench.XXXXXX)}"
mkdir -p "${out}"

log() { printf '[bench/wallet] %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  if [[ ${EUID} -eq 0 ]]; then apt-get install -y wrk >&2; else sudo apt-get install -y wrk >&2; fi
fi
command -v pgbench >/dev/null || { log "pgbench is missing (Debian postgresql-client)"; exit 1; }

eval "$("${root}/scripts/services" env)"
"${root}/scripts/services" up postgres >&2
cmake --build "${build}" -j2 --target wallet-service >&2

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

log "starting wallet-service (conf/wallet.toml, pool and threads as configured)"
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
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
pool_size="$(curl -fsS "http://127.0.0.1:${port}/metrics" | awk '$1 == "wallet_db_pool_size" { print $2 }')"

# wrk prints "1.23ms", "850.00us", "1.02s": to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}
# Percentile (ms) of pgbench's per-transaction log (4th field: latency in us).
pg_percentile() {
  local p=$1
  shift
  cat "$@" | awk '{ print $3 }' | sort -n | awk -v p="${p}" '
    { v[NR] = $1 } END { if (NR == 0) { print "?"; exit } i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", v[i] / 1000 }'
}

# Warm-up, not measured: the pool opens its connections and prepares its statements lazily.
log "warm-up: 5 s of API load"
BENCH_USERS="${users}" BENCH_RUN_ID="warmup$$" wrk -t2 -c"${client_counts[-1]}" -d5s -s "${here}/withdraw.lua" \
  "http://127.0.0.1:${port}/v1/withdrawals" >"${out}/wrk-warmup.txt"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
ratios=()
for clients in "${client_counts[@]}"; do
  threads=2
  ((clients < threads)) && threads=${clients}
  log "${clients} clients: API (wrk, ${seconds}s)"
  BENCH_USERS="${users}" BENCH_RUN_ID="run$$c${clients}" \
    wrk -t"${threads}" -c"${clients}" -d"${seconds}s" --timeout 10s --latency -s "${here}/withdraw.lua" \
    "http://127.0.0.1:${port}/v1/withdrawals" >"${out}/wrk-${clients}.txt"
  api_rps="$(awk '/^Requests\/sec:/ { print $2 }' "${out}/wrk-${clients}.txt")"
  api_p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "${out}/wrk-${clients}.txt")")"
  api_p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "${out}/wrk-${clients}.txt")")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "${out}/wrk-${clients}.txt")"
  errors="$(awk '/Socket errors:/ { print }' "${out}/wrk-${clients}.txt")"
  if [[ -n ${non2xx} || -n ${errors} ]]; then
    log "API run at ${clients} clients had failures (${non2xx:-0} non-2xx; ${errors:-no socket errors}): see ${out}"
    cat "${out}/wrk-${clients}.txt" >&2
    exit 1
  fi

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

  ratio="$(awk -v a="${api_rps}" -v b="${pg_tps}" 'BEGIN { printf "%.2f", a / b }')"
  ratios+=("${ratio}")
  rows+=("| ${clients} | $(printf '%.0f' "${api_rps}") | ${api_p50} | ${api_p99} | $(printf '%.0f' "${pg_tps}") | ${pg_p50} | ${pg_p99} | ${ratio} $(awk -v r="${ratio}" 'BEGIN { print (r >= 0.7) ? "met" : "**missed**" }') |")
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
# `wrk -v` prints its version and exits 1.
wrk_version="$( (wrk -v 2>&1 || true) | head -n1 | awk '{ sub(/^debian\//, "", $2); print $2 }')"

cat >"${out}/summary.md" <<EOF
## wallet-service

Measured $(date -u +%Y-%m-%d) by \`bench/wallet/run.sh\`, all in one run on one machine: $(nproc) cores
(${cpu:-unknown CPU}), ${mem_gib} GiB RAM, ${os}, PostgreSQL ${pg_version} from \`scripts/services\`
(fsync and synchronous_commit on). The load generators run on the same 2 cores as the database and
the service, and the machine was shared with other builds (load average ${load_before} before,
${load_after} after): compare the columns, do not plan capacity from them.

After a 5 s warm-up (not measured), each row: ${seconds} s of \`POST /v1/withdrawals\` through the
HTTP API with wrk ${wrk_version} (keep-alive, one Idempotency-Key per request, users drawn from
${users} accounts), then ${seconds} s of pgbench running
\`bench/wallet/withdraw.sql\` — the same transaction, statement for statement, prepared — with as many
clients against the same schema. wallet-service ran with \`conf/wallet.toml\` (pool of ${pool_size}
connections, as many HTTP threads), so at 32 and 64 clients its requests queue for the pool while
pgbench opens one connection per client. Latency: wrk's from request sent to answer read; pgbench's per
transaction. Target: API withdrawals/s ≥ 0.7 × pgbench tps.

| clients | API withdrawals/s | API p50 ms | API p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | API / pgbench (≥ 0.7) |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

After the run the schema is checked: one outbox row per withdrawal, and the accounts were debited
exactly the sum of the withdrawals. Raw wrk and pgbench output went to \`${out}\` (not committed).
EOF
cat "${out}/summary.md"
if [[ -z ${NO_README:-} ]]; then
  if [[ ! -f ${readme} ]]; then
    # shellcheck disable=SC2016 # literal backquotes in markdown
    printf '# Benchmarks\n\nEach component writes its own section with `bench/<component>/run.sh`.\n\n' >"${readme}"
  fi
  # Replace "## wallet-service" up to the next "## " heading, or append the section.
  awk -v file="${out}/summary.md" '
    function emit() { while ((getline line < file) > 0) print line; print ""; done = 1 }
    /^## wallet-service[[:space:]]*$/ { emit(); skipping = 1; next }
    skipping && /^## / { skipping = 0 }
    !skipping { print }
    END { if (!done) { print ""; emit() } }
  ' "${readme}" >"${out}/README.md"
  cp "${out}/README.md" "${readme}"
  log "results written to ${readme#"${root}"/}"
fi
