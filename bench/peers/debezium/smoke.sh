#!/usr/bin/env bash
# Smoke test of the Debezium peer at small scale (not a benchmark): setup, schema, ROWS rows
# through `peer.sh insert-sql` (psql, generate_series, one transaction) while the connector is
# stopped, start, wait until every row is a message on the topic (kcat), check a message's key
# and value, stop by PID with SIGTERM, drop the slot and the table (`peer.sh teardown`).
#
#   bench/peers/debezium/smoke.sh
#
# Environment: DATABASE_URL (wal_level=logical) and KAFKA_BOOTSTRAP_SERVERS (default: the
# `scripts/services env` of this checkout), PEER_TOPIC (default bench-deb-smoke-<epoch>),
# ROWS (10000), KEYS (1000), TIMEOUT (seconds to wait for the messages, 300), KEEP=1 keeps the
# slot, table and topic. Prints the timings on stdout; the connector's log goes to
# .local/bench/debezium/smoke.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd "${here}/../../.." && pwd -P)"
readonly here root peer="${here}/peer.sh"
readonly rows="${ROWS:-10000}" keys="${KEYS:-1000}" timeout_s="${TIMEOUT:-300}"
readonly connect_log="${root}/.local/bench/debezium/smoke.log"

if [[ -z ${DATABASE_URL:-} || -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]]; then
  eval "$("${root}/scripts/services" env)"
fi
export DATABASE_URL KAFKA_BOOTSTRAP_SERVERS
export PEER_TOPIC="${PEER_TOPIC:-bench-deb-smoke-$(date +%s)}"

log() { printf '[smoke] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now_ms() { date +%s%3N; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# Messages on the topic; 0 while Connect has not created it yet.
count() { { kcat -C -b "${KAFKA_BOOTSTRAP_SERVERS}" -t "${PEER_TOPIC}" -e -o beginning -q 2>/dev/null || true; } | wc -l; }

pid=""
cleanup() {
  if [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null; then
    kill -TERM "${pid}"
    wait "${pid}" || true
  fi
  if [[ ${KEEP:-0} != 1 ]]; then "${peer}" teardown || true; fi
}
trap cleanup EXIT

log "load: $(uptime)"
"${peer}" setup
"${peer}" schema
log "inserting ${rows} rows (${keys} keys) into the outbox while the connector is stopped"
t0=$(now_ms)
{
  echo "BEGIN;"
  echo "PREPARE ins(text, text) AS $("${peer}" insert-sql);"
  echo "SELECT format('EXECUTE ins(%L, %L)', 'user-' || (i % ${keys}),"
  echo "  format('{\"seq\":%s,\"user\":\"user-%s\",\"amount\":\"12.50\",\"asset\":\"ETH\",\"pad\":\"%s\"}',"
  echo "         i, i % ${keys}, repeat('x', 100)))"
  echo "FROM generate_series(1, ${rows}) AS i \\gexec"
  echo "COMMIT;"
} | psql "${DATABASE_URL}" -X -q -v ON_ERROR_STOP=1 >/dev/null
log "inserted in $(secs $(($(now_ms) - t0)))s"

mkdir -p "$(dirname "${connect_log}")"
t_start=$(now_ms)
"${peer}" start 2>"${connect_log}" &
pid=$!
t_first="" n=0
while ((n < rows)); do
  kill -0 "${pid}" 2>/dev/null || die "the connector exited; its log: ${connect_log}"
  (($(now_ms) - t_start < timeout_s * 1000)) || die "${n} of ${rows} messages after ${timeout_s}s; log: ${connect_log}"
  sleep 0.2
  n=$(count)
  if [[ -z ${t_first} ]] && ((n > 0)); then t_first=$(now_ms); fi
done
t_all=$(now_ms)
((n == rows)) || die "${n} messages for ${rows} rows (duplicates?)"

sample="$(kcat -C -b "${KAFKA_BOOTSTRAP_SERVERS}" -t "${PEER_TOPIC}" -e -o beginning -q -c 1 -f '%k\t%s\n')"
key=${sample%%$'\t'*} value=${sample#*$'\t'}
[[ ${key} =~ ^user-[0-9]+$ ]] || die "message key is '${key}', expected the aggregateid (user-N)"
[[ ${value} == '{"seq":'* ]] || die "message value does not start with the payload: ${value}"
distinct="$(kcat -C -b "${KAFKA_BOOTSTRAP_SERVERS}" -t "${PEER_TOPIC}" -e -o beginning -q -f '%s\n' |
  grep -o '"seq":[0-9]*' | sort -u | wc -l)"
((distinct == rows)) || die "${distinct} distinct \"seq\" values for ${rows} rows"

hwm_kb="$(awk '/^VmHWM/ { print $2 }' "/proc/${pid}/status")"
read -r utime stime < <(awk '{ print $14, $15 }' "/proc/${pid}/stat")
cpu_s=$(((utime + stime) / $(getconf CLK_TCK)))
t_stop=$(now_ms)
kill -TERM "${pid}"
rc=0
wait "${pid}" || rc=$?
stop_ms=$(($(now_ms) - t_stop))
pid=""
grep -q 'Kafka Connect stopped' "${connect_log}" || die "no 'Kafka Connect stopped' in ${connect_log} after SIGTERM"

drain_ms=$((t_all - t_first))
cat <<EOF
debezium smoke: ${rows} rows on ${PEER_TOPIC}: ok (${distinct} distinct seq, key ${key}, value ${value:0:40}...)
  start -> first message  $(secs $((t_first - t_start)))s (JVM + Connect + connector startup)
  start -> last message   $(secs $((t_all - t_start)))s
  first -> last message   $(secs "${drain_ms}")s ($((rows * 1000 / (drain_ms > 0 ? drain_ms : 1))) rows/s at this small scale, 0.2 s polling)
  SIGTERM -> exit         $(secs "${stop_ms}")s (exit status ${rc}; 143 = terminated by SIGTERM after the shutdown hook)
  peak RSS (VmHWM)        $((hwm_kb / 1024)) MiB, CPU ${cpu_s}s
  load                    $(cut -d' ' -f1-3 /proc/loadavg)
EOF
