#!/usr/bin/env bash
# The relay beside its peers, in one run: the same rows (a key out of 1,000 users, a ~190-byte
# JSON payload), the same broker, the same consumer, one system at a time (bench/peers/README.md).
#
#   bench/peers/run.sh [BUILD_DIR]        BUILD_DIR defaults to $OUTBOX_BUILD_DIR, else build/
#
# Per system (outbox-relay, two outbox-relays, Debezium, Watermill): a backlog of ROWS rows drained (rows/s from the
# first message to the last, and from the process start), then LATENCY_SECONDS of 1,000 rows/s
# (commit -> consumer p50/p99, after a warm-up), peak RSS and CPU seconds per 1M rows.
# Writes $BENCH_OUT_DIR/summary.md (the table), drain.tsv (system<TAB>rows/s, for the plot) and
# latency-<system>.tsv (sorted latencies in ms, for the CDF plot).
#
# Environment: ROWS (default 1000000), LATENCY_RATE (1000), LATENCY_SECONDS (30), PEERS (default
# "relay relay2 debezium watermill"). Needs the services with OUTBOX_PG_WAL_LEVEL=logical (Debezium reads
# the WAL; scripts/bench restarts PostgreSQL with it), Maven Central and the Go module proxy for
# the peers' setup on the first run.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../lib/readme_section.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_arg="${1:-${OUTBOX_BUILD_DIR:-build}}"
[[ ${build_arg} == /* ]] || build_arg="${root}/${build_arg}"
build="$(cd "${build_arg}" && pwd)"
rows="${ROWS:-1000000}"
rate="${LATENCY_RATE:-1000}"
seconds="${LATENCY_SECONDS:-30}"
read -ra peers <<<"${PEERS:-relay relay2 debezium watermill}"
out="${BENCH_OUT_DIR:-$(mktemp -d /tmp/peers-bench.XXXXXX)}"
mkdir -p "${out}"

eval "$("${root}/scripts/services" env)"
wal_level="$(psql "${DATABASE_URL}" -XAtc 'SHOW wal_level')"
[[ ${wal_level} == logical ]] || [[ " ${peers[*]} " != *" debezium "* ]] ||
  { echo "bench/peers: PostgreSQL runs with wal_level=${wal_level}; Debezium needs logical:" \
    "OUTBOX_PG_WAL_LEVEL=logical scripts/services down postgres && OUTBOX_PG_WAL_LEVEL=logical scripts/services up postgres" >&2
    exit 2; }
cmake --build "${build}" -j2 --target peer_bench outbox-relay >&2
bench="${build}/bench-bin/peer_bench"

# relay2: two relays side by side (they share the 256 lease partitions); the peers run one instance.
system_args() {
  case $1 in
    relay) echo "--system relay" ;;
    relay2) echo "--system relay --instances 2" ;;
    *) echo "--system ${root}/bench/peers/$1" ;;
  esac
}
get() { awk -v k="$2" '$1 == "result" && $2 == k { print $3 }' "${out}/$1.out"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

for peer in "${peers[@]}"; do
  echo "== ${peer}: drain of ${rows} rows (load $(load))" >&2
  echo "load_before $(load)" >"${out}/drain-${peer}.out"
  # shellcheck disable=SC2046 # system_args is words by design (no spaces in the repository path)
  "${bench}" drain $(system_args "${peer}") --rows "${rows}" | tee -a "${out}/drain-${peer}.out" >&2
  echo "== ${peer}: ${rate} rows/s for ${seconds} s (load $(load))" >&2
  echo "load_before $(load)" >"${out}/latency-${peer}.out"
  # shellcheck disable=SC2046
  "${bench}" latency $(system_args "${peer}") --rate "${rate}" --seconds "${seconds}" \
    --cdf "${out}/latency-${peer}.tsv" | tee -a "${out}/latency-${peer}.out" >&2
done

label() {
  case $1 in
    relay) echo "outbox-relay (ours)" ;;
    relay2) echo "outbox-relay x2 (ours)" ;;
    debezium) echo "Debezium 3.6.1 outbox router" ;;
    watermill) echo "Watermill forwarder" ;;
    *) echo "$1" ;;
  esac
}
describe() { sed -n 's/^# system: //p' "${out}/drain-$1.out" | head -n1; }
fmt() { awk -v v="$2" "BEGIN { printf \"$1\", v }"; }

: >"${out}/drain.tsv"
{
  echo "## The relay beside its peers"
  echo
  echo "Measured $(date -u +%Y-%m-%d) by \`bench/peers/run.sh\` (driver \`bench/peers/peer_bench.cpp\`), one system"
  echo "after the other on the same machine, database and broker: ${rows} rows drained"
  echo "(inserted while the system was stopped; rows/s from the broker's append time of the first message to"
  echo "that of the last, and from the process start, so start-up counts), then ${rate} rows/s for ${seconds} s"
  echo "(each row its own committed transaction, 4 writers; latency = consumer receive − the writer's"
  echo "COMMIT returning). Load average before each run in the last column."
  echo
  echo "| system | drain rows/s (first → last message) | from process start (start-up) | commit → consumer p50 / p99 at ${rate}/s | peak RSS | CPU s per 1M rows (drain) | load before drain / latency |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
  for peer in "${peers[@]}"; do
    d="drain-${peer}" l="latency-${peer}"
    rss=$(printf '%s\n' "$(get "${d}" peak_rss_mib)" "$(get "${l}" peak_rss_mib)" | sort -g | tail -n1)
    echo "| $(label "${peer}") | $(fmt '%.0f' "$(get "${d}" rows_per_s)") | $(fmt '%.0f' "$(get "${d}" rows_per_s_from_start)") ($(fmt '%.1f' "$(get "${d}" startup_s)") s) | $(fmt '%.2f' "$(get "${l}" commit_p50_ms)") / $(fmt '%.2f' "$(get "${l}" commit_p99_ms)") ms | $(fmt '%.0f' "${rss}") MiB | $(fmt '%.1f' "$(get "${d}" cpu_s_per_1m)") | $(awk '$1 == "load_before" { print $2, $3, $4 }' "${out}/${d}.out") / $(awk '$1 == "load_before" { print $2, $3, $4 }' "${out}/${l}.out") |"
    printf '%s\t%s\n' "$(label "${peer}")" "$(get "${d}" rows_per_s)" >>"${out}/drain.tsv"
  done
  echo
  echo "What each guarantees (as each describes itself, \`peer.sh describe\`):"
  echo
  for peer in "${peers[@]}"; do
    if [[ ${peer} == relay2 ]]; then
      echo "- **$(label relay2)**: the same, two relays sharing the partitions (the peers cannot add instances)."
    elif [[ ${peer} == relay ]]; then
      echo "- **$(label relay)**: order per key with N instances (256 lease partitions by key hash, one relay each;"
      echo "  a failed row holds the later rows of its key); acks=all + idempotent producer; at-least-once;"
      echo "  rows deleted after the broker's acknowledgement."
    else
      echo "- **$(label "${peer}")**: $(describe "${peer}")"
    fi
  done
} >"${out}/summary.md"
cat "${out}/summary.md"
readme_section "${root}/bench/README.md" "${out}/summary.md"
