#!/usr/bin/env bash
# Runs the outbox-relay benchmarks in one go on this machine, prints a markdown table with the
# targets beside the measurements and writes it into bench/README.md under "## outbox-relay"
# (that section only; other components' sections stay as they are).
#
#   bench/relay/run.sh [BUILD_DIR]          BUILD_DIR defaults to build/
#
# Environment: ROWS (backlog size, default 1000000), LATENCY_RATE (rows/s, default 1000),
# REPEAT (runs of the claim ceiling and of the 1-relay drain, median reported; default 3),
# LATENCY_SECONDS (default 30, after a 3 s warm-up that is not counted), BATCH_SIZE (default 1000, as conf/relay.toml), NO_README=1 (print only).
# Needs the services (`scripts/services up`); builds outbox-relay and relay_bench first.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../lib/readme_section.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-${root}/build}" && pwd)"
rows="${ROWS:-1000000}"
rate="${LATENCY_RATE:-1000}"
seconds="${LATENCY_SECONDS:-30}"
batch="${BATCH_SIZE:-1000}"
repeat="${REPEAT:-3}"
readme="${root}/bench/README.md"

eval "$("${root}/scripts/services" env)"
"${root}/scripts/services" up postgres kafka >&2

cmake --build "${build}" -j2 --target outbox-relay relay_bench >&2
bench="${build}/bench-bin/relay_bench"
out="$(mktemp -d /tmp/relay-bench.XXXXXX)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

run() {
  local name=$1
  shift
  echo "== relay_bench $*" >&2
  "${bench}" "$@" | tee "${out}/${name}.out" >&2
}
get() { awk -v k="$2" '$1 == "result" && $2 == k { print $3 }' "${out}/$1.out"; }
# The disk of a shared machine makes single database-bound runs swing by a third: runs the
# measurement ${repeat} times and keeps the run with the median msgs/s as <name>.out.
run_median() {
  local name=$1
  shift
  local i
  for ((i = 1; i <= repeat; i++)); do run "${name}.${i}" "$@"; done
  local median
  median="$(for ((i = 1; i <= repeat; i++)); do echo "$(get "${name}.${i}" msgs_per_s) ${i}"; done |
    sort -n | awk -v m="$(((repeat + 1) / 2))" 'NR == m { print $2 }')"
  cp "${out}/${name}.${median}.out" "${out}/${name}.out"
}
runs_of() {
  local i
  for ((i = 1; i <= repeat; i++)); do printf '%s%.0f' "$( ((i > 1)) && echo ', ')" "$(get "$1.${i}" msgs_per_s)"; done
}

# Latency first, on a quiet database (after the 1M-row drains the server is still writing back
# and vacuuming for a while); the floor before it also warms the broker up: a Kafka JVM restarted
# a minute ago (as the broker-outage test does) shows two to three times the latency.
run floor broker-latency --rate "${rate}" --seconds "${seconds}"
run latency latency --rate "${rate}" --seconds "${seconds}" --batch-size "${batch}"
run_median db db-ceiling --rows "${rows}" --batch-size "${batch}"
run_median db2 db-ceiling --rows "${rows}" --batch-size "${batch}" --clients 2
run_median claim claim-ceiling --rows "${rows}" --batch-size "${batch}"
run produce produce-ceiling --rows "${rows}"
run publisher publisher-ceiling --rows "${rows}" --batch-size "${batch}"
run_median drain1 drain --rows "${rows}" --relays 1 --batch-size "${batch}"
run drain2 drain --rows "${rows}" --relays 2 --batch-size "${batch}"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
verdict() { awk "BEGIN { print (($1) ? \"met\" : \"**missed**\") }"; }

db_rate=$(get db msgs_per_s)
db2_rate=$(get db2 msgs_per_s)
claim_rate=$(get claim msgs_per_s)
produce_rate=$(get produce msgs_per_s)
publisher_rate=$(get publisher msgs_per_s)
drain1_rate=$(get drain1 msgs_per_s)
drain2_rate=$(get drain2 msgs_per_s)
ceiling=$(calc '%.0f' "${db_rate}")
hwm_kib=$(printf '%s\n' "$(get drain1 vm_hwm_kib)" "$(get drain2 vm_hwm_kib)" "$(get latency vm_hwm_kib)" | sort -n | tail -1)
p50=$(get latency commit_p50_ms)
p99=$(get latency commit_p99_ms)

kafka_jar="$(compgen -G "${OUTBOX_SERVICES_ROOT}/kafka/libs/kafka_2.13-*.jar" | head -n1 || true)"
kafka_version="${kafka_jar##*/kafka_2.13-}"
kafka_version="${kafka_version%.jar}"
pg_version="$(psql "${DATABASE_URL}" -XAtc 'SHOW server_version' 2>/dev/null | cut -d' ' -f1)"
# shellcheck source=/dev/null
os="$(. /etc/os-release && echo "${PRETTY_NAME}")"
mem_gib="$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
rdkafka_version="$(pkg-config --modversion rdkafka 2>/dev/null || echo '?')"

section="$(
  cat <<EOF
## outbox-relay

Measured $(date -u +%Y-%m-%d) by \`bench/relay/run.sh\` (driver: \`bench/relay/relay_bench.cpp\`), all in one
run on one machine: $(nproc) cores, ${mem_gib} GiB RAM, ${os}, PostgreSQL ${pg_version} (fsync and
synchronous_commit on; the relay's sessions off, its default), Kafka ${kafka_version:-?} (single KRaft node, loopback), librdkafka ${rdkafka_version};
load average ${load_before} before the run, ${load_after} after it (the machine is shared: compare
rows of one run, do not plan capacity from them). Rows: ~180-byte WithdrawalCreated-like JSON payload, 1,000 keys, one header;
topics with 6 partitions; relay defaults from \`conf/relay.toml\` (batch_size ${batch}).

| Measurement | Target | Measured | |
|---|---|---|---|
| Backlog drain, 1 relay, $(thousands "${rows}") rows, median of ${repeat} runs | ≥ 0.6 × ceiling (a) = $(calc '%.0f' "0.6 * ${ceiling}") msgs/s | $(calc '%.0f' "${drain1_rate}") msgs/s ($(calc '%.2f' "${drain1_rate} / ${ceiling}") × ceiling (a)); runs: $(runs_of drain1) | $(verdict "${drain1_rate} >= 0.6 * ${ceiling}") |
| Ceiling (a): the database alone: pgbench, one statement claims (SKIP LOCKED, id order) and deletes a batch of ${batch} and returns its rows, one connection, the relay's session settings; median of ${repeat} runs | — | $(calc '%.0f' "${db_rate}") rows/s; runs: $(runs_of db) | |
| Ceiling (b): librdkafka alone, relay producer defaults, no database | — | $(calc '%.0f' "${produce_rate}") msgs/s | |
| Ceiling (a) on two connections (pgbench -c 2, the same statement): what two relays could reach here; median of ${repeat} runs | — | $(calc '%.0f' "${db2_rate}") rows/s ($(calc '%.2f' "${db2_rate} / ${db_rate}") × one connection); runs: $(runs_of db2) | |
| Diagnostic: the relay's own claim-and-delete statement and commit (\`relay::store\`: lease partitions, retry and dead-letter checks), no broker, median of ${repeat} runs | — | $(calc '%.0f' "${claim_rate}") rows/s ($(calc '%.2f' "${claim_rate} / ${ceiling}") × ceiling (a)); runs: $(runs_of claim) | |
| For reference: relay publisher alone, batches of ${batch} each awaited, no database | — | $(calc '%.0f' "${publisher_rate}") msgs/s | |
| Backlog drain, 2 relays, same backlog | ≥ 1.6 × 1 relay = $(calc '%.0f' "1.6 * ${drain1_rate}") msgs/s | $(calc '%.0f' "${drain2_rate}") msgs/s ($(calc '%.2f' "${drain2_rate} / ${drain1_rate}") ×; $(calc '%.2f' "${drain2_rate} / ${db2_rate}") × the two-connection ceiling) | $(verdict "${drain2_rate} >= 1.6 * ${drain1_rate}") |
| Relay RSS, peak VmHWM over the drains and the steady run | < 64 MiB | $(calc '%.1f' "${hwm_kib} / 1024") MiB | $(verdict "${hwm_kib} < 65536") |
| Steady $(get latency rate | cut -d. -f1) rows/s (one committed txn each), writer's COMMIT returned → consumer received, p50 | ≤ 5 ms | $(calc '%.2f' "${p50}") ms | $(verdict "${p50} <= 5") |
| same, p99 | ≤ 25 ms | $(calc '%.2f' "${p99}") ms | $(verdict "${p99} <= 25") |
| same, p90 / max | — | $(calc '%.2f' "$(get latency commit_p90_ms)") / $(calc '%.1f' "$(get latency commit_max_ms)") ms | |
| same, stricter: from the row's created_at (so the writer's own INSERT and COMMIT count too), p50 / p99 | — | $(calc '%.2f' "$(get latency p50_ms)") / $(calc '%.2f' "$(get latency p99_ms)") ms | |
| same, the relay's own relay_commit_to_ack_seconds (created_at → broker ack), p50 / p99 | — | ≤ $(get latency relay_ack_p50_le_ms) / ≤ $(get latency relay_ack_p99_le_ms) ms (histogram bucket bounds) | |
| For reference: floor, same rate produced straight to Kafka (relay producer defaults, each message flushed and awaited) → same consumer, p50 / p99 | — | $(calc '%.2f' "$(get floor p50_ms)") / $(calc '%.2f' "$(get floor p99_ms)") ms | |

Drain times: 1 relay $(calc '%.1f' "$(get drain1 seconds)") s (relay CPU $(calc '%.1f' "$(get drain1 relay_cpu_s)") s),
2 relays $(calc '%.1f' "$(get drain2 seconds)") s (CPU $(calc '%.1f' "$(get drain2 relay_cpu_s)") s together); messages in the topic
$(get drain1 published) and $(get drain2 published) for $(get drain1 rows) rows (the excess are re-sends).
A drain is timed from the relays' \`relay ready\` to the table being empty, on a table vacuumed
and checkpointed after the inserts. Ceiling (a) is what PostgreSQL alone does with the relay's
work: pgbench on one connection, each transaction one statement that claims ${batch} rows (FOR UPDATE
SKIP LOCKED, id order), deletes them and returns their payloads, synchronous_commit as the relay's
sessions have it; no relay code, no broker. The relay runs the same kind of
statement (its claim also checks lease partitions, rows waiting for a retry and dead-lettered keys),
but keeps the transaction open until the broker acknowledged every row, and shares the machine's
cores with the broker, which ceiling (a) does not: the diagnostic row shows the relay's own
statement and commit without a broker. The two-connection row is the same pgbench on two
connections (SKIP LOCKED shares the rows out): the ceiling for two relays on this machine.
Ceiling (b) streams without waiting per batch. In a backlog
the relay claims its next batch while the broker acknowledges the current one, and commits the
current one while the next is out, so the database work sets its pace; "for
reference" is the publisher's own pace with every batch awaited alone. Latency = consumer receive time − the moment
the writer's COMMIT returned (both clocks of this machine), and beside it − the row's created_at
(\`clock_timestamp()\` at INSERT, so it also contains the writer's own commit); ${seconds} s at ${rate} rows/s from 4 writer
connections, after a 3 s warm-up at the same rate that is delivered but not counted (it holds the
consumer's first fetch and the relay's first look-up of the topic, up to ~300 ms). The floor
row produces one message at a time through a producer with the relay's properties and flushes
it, as the relay flushes a batch it awaits. Experiments: the RELAY_* environment (e.g. \`RELAY_KAFKA_PROPERTIES=linger.ms=0\`,
\`RELAY_OUTBOX_SYNCHRONOUS_COMMIT=true\`) reaches the relays and the ceilings that use their
settings; none is set for the table above.
EOF
)"

printf '%s\n' "${section}"
printf '%s\n' "${section}" >"${out}/section.md"
readme_section "${readme}" "${out}/section.md"
echo "bench/relay: raw output in ${out}" >&2
