# shellcheck shell=bash disable=SC2154 # out, duration, ... are run.sh's (listed below)
# The soak's plots and summary (sourced by bench/soak/run.sh). Reads OUT/soak.tsv, whose columns
# are SAMPLE_HEADER's and the latency window's (created signed p50_ms p99_ms max_ms), and the
# run's settings from run.sh's variables (out, duration, interval, rate, users, workers, t0_ms,
# load_before, load_after, drained, quarters, anvil_flags).

# Small PNGs as scripts/bench makes them.
readonly SOAK_TERMINAL="set terminal pngcairo size 720,405 font 'DejaVu Sans,9' noenhanced"

# column NAME: the 1-based column of NAME in soak.tsv.
column() {
  head -n1 "${out}/soak.tsv" | tr '\t' '\n' | awk -v n="$1" '$0 == n { print NR; found = 1 } END { exit !found }' ||
    die "soak.tsv has no column ${1}"
}

# quarter_latency: "n p50 p99" of the withdrawals created in the first quarter of the run, then
# the same for the last quarter and the whole run, then the count never signed; exact
# (percentile_disc over every row), commit -> consumer as in windows().
quarter_latency() {
  sql "WITH r AS (
         SELECT extract(epoch FROM created_at) * 1000 - :t0 AS created_ms,
                extract(epoch FROM signed_at - created_at) * 1000 AS latency_ms
           FROM withdrawals WHERE created_at >= to_timestamp(:t0 / 1000.0)),
       q AS (SELECT CASE WHEN created_ms <= :d * 250 THEN 'first'
                         WHEN created_ms > :d * 750 AND created_ms <= :d * 1000 THEN 'last' END AS quarter, latency_ms
               FROM r)
       SELECT string_agg(concat_ws(' ', n, p50, p99), ' ' ORDER BY o) || ' ' || (SELECT count(*) - count(latency_ms) FROM r)
         FROM (SELECT o, count(latency_ms) AS n,
                      coalesce(round((percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms))::numeric, 1)::text, '-') AS p50,
                      coalesce(round((percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms))::numeric, 1)::text, '-') AS p99
                 FROM (SELECT 1 AS o, latency_ms FROM q WHERE quarter = 'first'
                       UNION ALL SELECT 2, latency_ms FROM q WHERE quarter = 'last'
                       UNION ALL SELECT 3, latency_ms FROM r) x GROUP BY o) y" \
    "t0=${t0_ms}" "d=${duration}"
}

# quarter_mean NAME first|last: the mean of column NAME over the samples of that quarter.
quarter_mean() {
  awk -F'\t' -v c="$(column "$1")" -v q="$2" -v d="${duration}" '
    NR > 1 && $c != "-" && ((q == "first" && $1 <= d / 4) || (q == "last" && $1 > d * 3 / 4)) { s += $c; n++ }
    END { if (n) printf "%.6g\n", s / n; else print "-" }' "${out}/soak.tsv"
}
column_max() {
  awk -F'\t' -v c="$(column "$1")" 'NR > 1 && $c != "-" && $c + 0 > m { m = $c + 0 } END { printf "%.6g\n", m }' \
    "${out}/soak.tsv"
}

# cpu_share NAME: NAME's CPU time between the first and the last sample over the time between
# them, as a percentage of one core.
cpu_share() {
  awk -F'\t' -v c="$(column "$1_cpu_s")" 'NR == 2 { t0 = $1; c0 = $c } NR > 2 { t = $1; c1 = $c }
    END { if (t > t0) printf "%.0f %%", (c1 - c0) * 100 / (t - t0); else print "-" }' "${out}/soak.tsv"
}

# verdict FIRST LAST FLOOR: "flat" when LAST <= 1.2 x FIRST or LAST - FIRST < FLOOR, else "grows"
# (nothing when FLOOR is "-").
verdict() {
  awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {
    if (a == "-" || b == "-" || f == "-") { print ""; exit }
    print ((b <= 1.2 * a || b - a < f) ? "flat" : "**grows**") }'
}

# row LABEL FIRST LAST UNIT_DIVISOR FORMAT FLOOR [MAX]: one summary table row.
row() {
  local label=$1 first=$2 last=$3 divisor=$4 format=$5 floor=$6 max=${7:--}
  awk -v l="${label}" -v a="${first}" -v b="${last}" -v d="${divisor}" -v f="${format}" -v m="${max}" \
    -v v="$(verdict "${first}" "${last}" "${floor}")" 'BEGIN {
      fa = (a == "-") ? "-" : sprintf(f, a / d); fb = (b == "-") ? "-" : sprintf(f, b / d)
      fm = (m == "-") ? "-" : sprintf(f, m / d)
      ch = (a == "-" || b == "-" || a == 0) ? "-" : sprintf("%+.0f %%", (b - a) * 100 / a)
      printf "| %s | %s | %s | %s | %s | %s |\n", l, fa, fb, ch, fm, v }'
}

plot_all() {
  local tsv="${out}/soak.tsv"
  gnuplot <<EOF
${SOAK_TERMINAL}
set datafile separator '\t'
set datafile missing '-'
set grid
set xlabel 'elapsed (s)'
set key top left

set output '${out}/outbox-size.png'
set title 'outbox_messages: table and index size, dead tuples (${rate} withdrawals/s)'
set ylabel 'MiB'
set y2label 'dead tuples'
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot '${tsv}' skip 1 using 1:(\$$(column table_bytes) / 1048576) with lines lw 2 title 'table (pg_relation_size)', \
     '' skip 1 using 1:(\$$(column index_bytes) / 1048576) with lines lw 2 title 'indexes (pg_indexes_size)', \
     '' skip 1 using 1:$(column n_dead_tup) axes x1y2 with lines dt 2 title 'n_dead_tup (right axis)'

set output '${out}/rss.png'
set title 'Resident memory (VmRSS) over time'
set ylabel 'MiB'
set y2label 'anvil MiB'
plot '${tsv}' skip 1 using 1:(\$$(column relay_rss_kib) / 1024) with lines lw 2 title 'outbox-relay', \
     '' skip 1 using 1:(\$$(column wallet_rss_kib) / 1024) with lines title 'wallet-service', \
     '' skip 1 using 1:(\$$(column broadcaster_rss_kib) / 1024) with lines title 'broadcaster-worker', \
     '' skip 1 using 1:(\$$(column anvil_rss_kib) / 1024) axes x1y2 with lines dt 2 title 'anvil, the dev chain (right axis)'
unset y2label
unset y2tics
set ytics mirror

set output '${out}/latency.png'
set title 'Commit -> consumer (created_at -> signed_at) per ${interval} s window'
set ylabel 'ms (log scale)'
set logscale y
set yrange [*:*]
set key outside bottom center horizontal
set y2label 'withdrawals / s'
set ytics nomirror
set y2tics
plot '${tsv}' skip 1 using 1:$(column p99_ms) with linespoints lw 2 pt 7 ps 0.5 title 'p99', \
     '' skip 1 using 1:$(column p50_ms) with linespoints pt 7 ps 0.5 title 'p50', \
     '' skip 1 using 1:(\$$(column created) / ${interval}) axes x1y2 with lines dt 2 title 'created / s (right axis)', \
     '' skip 1 using 1:(\$$(column signed) / ${interval}) axes x1y2 with lines dt 3 title 'signed / s (right axis)'
EOF
}

write_summary() {
  local q1="first quarter (0-$((duration / 4)) s)" q4="last quarter ($((duration * 3 / 4))-${duration} s)"
  local f_n f_p50 f_p99 l_n l_p50 l_p99 a_n a_p50 a_p99 unsigned name
  read -r f_n f_p50 f_p99 l_n l_p50 l_p99 a_n a_p50 a_p99 unsigned <<<"${quarters}"
  local vacuums dead_max first_vac
  vacuums="$(awk -F'\t' -v c="$(column autovacuum_count)" 'NR > 1 { v = $c } END { print v + 0 }' "${out}/soak.tsv")"
  dead_max="$(column_max n_dead_tup)"
  first_vac="$(awk -F'\t' -v c="$(column last_autovacuum_s)" 'NR > 1 && $c != "-" { print $c; exit }' "${out}/soak.tsv")"
  echo "## Soak: ${rate} withdrawals/s for ${duration} s through the API, relay and broadcaster running"
  echo
  echo "Load: ${rate} withdrawals/s on a fixed schedule over ${users} accounts (credited first through the"
  echo "deposit API) from ${workers} processes, each with its own keep-alive connection and slice of the users,"
  echo "each user's withdrawals to one address of their own;"
  echo "outbox-relay and broadcaster-worker (events mode, Kafka) with their defaults from \`conf/\`, an anvil of"
  echo "the run's own with a block every second (\`${anvil_flags}\`). A sample every ${interval} s: \`pg_relation_size\` and"
  echo "\`pg_indexes_size\` of \`outbox_messages\`, \`pg_stat_user_tables\`, VmRSS of each daemon from /proc."
  echo
  echo "**Commit → consumer** = \`withdrawals.signed_at − created_at\`: \`created_at\` is \`now()\` of the wallet's"
  echo "transaction that inserts the withdrawal and its outbox row (its start, a few ms before the commit);"
  echo "\`signed_at\` is \`now()\` of the broadcaster's signing transaction, the first thing it does with the"
  echo "event after Kafka delivered it. So it spans the wallet's commit, the relay's claim, publish and"
  echo "acknowledgement, Kafka, the consumer's fetch and the broadcaster's start of work. Exact percentiles"
  echo "over every withdrawal (\`percentile_disc\`, not histogram buckets), per window of creation time."
  echo
  echo "\`uptime\` before: \`${load_before##*load average: }\`; after: \`${load_after##*load average: }\` (load average 1/5/15 min; 2 cores)."
  echo
  echo "| | ${q1} | ${q4} | change | max | |"
  echo "| --- | ---: | ---: | ---: | ---: | --- |"
  row "outbox_messages table, MiB (mean)" "$(quarter_mean table_bytes first)" "$(quarter_mean table_bytes last)" 1048576 '%.2f' 1048576 "$(column_max table_bytes)"
  row "its indexes, MiB (mean)" "$(quarter_mean index_bytes first)" "$(quarter_mean index_bytes last)" 1048576 '%.2f' 1048576 "$(column_max index_bytes)"
  row "dead tuples (mean)" "$(quarter_mean n_dead_tup first)" "$(quarter_mean n_dead_tup last)" 1 '%.0f' 10000 "${dead_max}"
  for name in relay wallet broadcaster anvil; do
    row "${name} RSS, MiB (mean)" "$(quarter_mean "${name}_rss_kib" first)" "$(quarter_mean "${name}_rss_kib" last)" 1024 '%.1f' 4096 "$(column_max "${name}_rss_kib")"
  done
  row "commit → consumer p50, ms (exact)" "${f_p50}" "${l_p50}" 1 '%.1f' 20
  row "commit → consumer p99, ms (exact)" "${f_p99}" "${l_p99}" 1 '%.1f' 20 "$(column_max p99_ms)"
  row "withdrawals created / s" "$(quarter_mean created first)" "$(quarter_mean created last)" "${interval}" '%.1f' -
  row "withdrawals signed / s" "$(quarter_mean signed first)" "$(quarter_mean signed last)" "${interval}" '%.1f' -
  row "pending (not yet signed) at a sample" "$(quarter_mean pending first)" "$(quarter_mean pending last)" 1 '%.0f' "$((rate * 2))" "$(column_max pending)"
  echo
  echo "Flat = the last quarter's mean at most 1.2 × the first's, or less than a small absolute step above it"
  echo "(1 MiB for sizes, 4 MiB for RSS, 10,000 dead tuples, 20 ms for latency, 2 s of load pending). \"max\" of"
  echo "p99 is the worst ${interval}-s window's. anvil is the dev chain, not ours: it fills its 256 blocks of kept"
  echo "transactions in the first ~4 minutes, then grows ~15-25 MiB a minute at 200/s (bench/README.md, \"Soak\"). Whole run: ${a_n} withdrawals, commit → consumer p50 ${a_p50} ms,"
  echo "p99 ${a_p99} ms (quarters: ${f_n} and ${l_n} withdrawals); ${unsigned} never signed."
  echo "CPU over the run (share of one core, from /proc/PID/stat between the first and the last sample):"
  echo "$(cpu_share relay) outbox-relay, $(cpu_share wallet) wallet-service, $(cpu_share broadcaster) broadcaster-worker,"
  echo "$(cpu_share anvil) anvil."
  if ((drained)); then
    echo "Every withdrawal was signed and broadcast after the load: the pipeline kept up."
  else
    echo "**The pipeline did not keep up: withdrawals were still pending 30 s after progress stopped.**"
  fi
  echo
  echo "Autovacuum of \`outbox_messages\` (threshold 10000 dead tuples, scale factor 0, no cost delay; the"
  echo "server's \`autovacuum_naptime\` is $(psql "${BENCH_ADMIN_URL}" -X -A -t -c 'SHOW autovacuum_naptime')): ${vacuums} run(s) in ${duration} s (the first by"
  echo "${first_vac:--} s), at most ${dead_max} dead tuples at a sample."
  echo
  echo "![outbox_messages size](outbox-size.png) ![RSS](rss.png) ![commit -> consumer](latency.png)"
  echo
  echo "Data: \`soak.tsv\` (one row per sample: $(head -n1 "${out}/soak.tsv" | tr '\t' ' '))."
}
