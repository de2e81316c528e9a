#!/usr/bin/env bash
# Smoke test of the Watermill peer at small scale (not a benchmark): setup, schema, a backlog of ROWS rows
# inserted with psql through `peer.sh insert-sql`, start, wait until every row is a message on the topic,
# check key, value (the payload verbatim) and order per key, stop with SIGTERM, print the drain rate.
#
#   bench/peers/watermill/smoke.sh [ROWS]      (default 10000; uses the shared services)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"
rows="${1:-10000}"
[[ "${rows}" =~ ^[1-9][0-9]*$ ]] || { echo "smoke.sh: ROWS must be a positive integer, got '${rows}'" >&2; exit 2; }

if [[ -z "${DATABASE_URL:-}" || -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  services="${OUTBOX_SERVICES_SCRIPT:-${repo}/scripts/services}"
  eval "$("${services}" env)"
fi
PEER_TOPIC="bench-wm-smoke-$(date +%s)"
export PEER_TOPIC
export PEER_SCHEMA="${PEER_SCHEMA:-bench_wm}"
peer="${here}/peer.sh"
log="$(mktemp -t watermill-smoke.XXXXXX.log)"
pid=""

cleanup() {
  if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then kill -TERM "${pid}"; wait "${pid}" || true; fi
}
trap cleanup EXIT
fail() { echo "smoke.sh: FAIL: $*" >&2; echo "--- forwarder log (${log}):" >&2; tail -n 30 "${log}" >&2; exit 1; }
count() { kcat -C -b "${KAFKA_BOOTSTRAP_SERVERS}" -t "${PEER_TOPIC}" -o beginning -e -q | wc -l; }

"${peer}" setup
"${peer}" create-topic 6
"${peer}" schema

# The driver's shape: key 'user-K' over 1,000 keys, a ~180-byte JSON payload holding "seq":N; all rows
# through the peer's own statement with its two parameters.
insert_sql="$("${peer}" insert-sql)"
psql "${DATABASE_URL}" -v ON_ERROR_STOP=1 -q <<SQL
DO \$do\$
DECLARE i int;
BEGIN
  FOR i IN SELECT generate_series(1, ${rows}) LOOP
    EXECUTE \$sql\$${insert_sql}\$sql\$
      USING 'user-' || (i % 1000),
            format('{"seq":%s,"user":"user-%s","amount":"12.345678900000000000","asset":"ETH",'
                   '"to":"0x00000000000000000000000000000000deadbeef","note":"watermill smoke row padding"}',
                   i, i % 1000);
  END LOOP;
END
\$do\$;
SQL
echo "inserted ${rows} rows into ${PEER_SCHEMA}.watermill_${PEER_TOPIC}"

started="$(date +%s.%N)"
"${peer}" start 2>"${log}" &
pid=$!
deadline=$(( $(date +%s) + 300 ))
n=0
while (( (n = $(count)) < rows )); do
  kill -0 "${pid}" 2>/dev/null || fail "the forwarder exited early (${n} of ${rows} messages)"
  (( $(date +%s) < deadline )) || fail "only ${n} of ${rows} messages after 300 s"
  sleep 0.2
done
finished="$(date +%s.%N)"

kill -TERM "${pid}"
rc=0
wait "${pid}" || rc=$?
pid=""
(( rc == 0 )) || fail "the forwarder exited ${rc} on SIGTERM"
(( n == rows )) || fail "${n} messages for ${rows} rows (duplicates)"

# Key is the row's $1; value is the row's $2 byte for byte; seq grows per key (order per key).
kcat -C -b "${KAFKA_BOOTSTRAP_SERVERS}" -t "${PEER_TOPIC}" -o beginning -e -q -f '%k\t%s\n' >"${log}.messages"
first="$(head -n 1 "${log}.messages")"
echo "first message: ${first}"
awk -F'\t' '
  { key = $1; value = $2
    if (!match(value, /"seq":[0-9]+/)) { print "no \"seq\": in " value; bad = 1; exit }
    seq = substr(value, RSTART + 6, RLENGTH - 6) + 0
    if (key != "user-" (seq % 1000)) { print "key " key " for seq " seq; bad = 1; exit }
    expect = sprintf("{\"seq\":%d,\"user\":\"user-%d\",\"amount\":\"12.345678900000000000\",\"asset\":\"ETH\",\"to\":\"0x00000000000000000000000000000000deadbeef\",\"note\":\"watermill smoke row padding\"}", seq, seq % 1000)
    if (value != expect) { print "value not verbatim: " value; bad = 1; exit }
    if (key in last && seq <= last[key]) { print "order broken for " key ": " seq " after " last[key]; bad = 1; exit }
    last[key] = seq }
  END { exit bad }' "${log}.messages" || fail "message check (above)"

elapsed="$(echo "${finished} - ${started}" | bc -l)"
printf 'PASS: %d rows -> %d messages on %s (keys = the row keys, values = their payloads verbatim, order per key kept)\n' \
  "${rows}" "${n}" "${PEER_TOPIC}"
printf 'elapsed %.2f s from start to the last message: %.0f rows/s (load: %s)\n' \
  "${elapsed}" "$(echo "${rows} / ${elapsed}" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "${log}" "${log}.messages"
# Passed: drop this run's tables (the topic stays on the broker, small).
psql "${DATABASE_URL}" -q -v ON_ERROR_STOP=1 -c "DROP TABLE \"${PEER_SCHEMA}\".\"watermill_${PEER_TOPIC}\", \"${PEER_SCHEMA}\".\"watermill_offsets_${PEER_TOPIC}\""
