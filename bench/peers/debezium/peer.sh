#!/usr/bin/env bash
# Benchmark peer: Debezium 3.6.1.Final's PostgreSQL connector with its outbox EventRouter, in Kafka
# Connect 4.1.1 standalone (Kafka's own Maven artifacts, the broker's version). Peer contract:
# bench/peers/debezium/README.md and the lead's driver.
#
#   peer.sh setup       fetch the jars (pom.xml beside this) into <repo>/.local/bench/debezium/libs
#   peer.sh schema      drop + create the outbox table, its publication and logical replication
#                       slot (so rows inserted before `start` are captured); reset Connect's offsets
#   peer.sh insert-sql  print the INSERT ($1 = key/aggregateid, $2 = payload)
#   peer.sh start       exec Connect standalone in the foreground (SIGTERM stops it cleanly)
#   peer.sh describe    one line: name, version, guarantees
#   peer.sh teardown    drop the slot, publication and table (a left slot pins WAL on the server)
#
# Environment: DATABASE_URL (postgresql://user[:password]@host[:port]/db; wal_level=logical),
# KAFKA_BOOTSTRAP_SERVERS, PEER_TOPIC, PEER_SCHEMA (default public). The connector and Connect
# settings and why: README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd "${here}/../../.." && pwd -P)"
readonly here root
readonly home="${root}/.local/bench/debezium"
readonly libs="${home}/libs" run_dir="${home}/run"
readonly debezium_version="3.6.1.Final" kafka_version="4.1.1"
readonly table="debezium_outbox"

log() { printf '[debezium-peer] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

need_env() {
  local v
  for v in "$@"; do
    [[ -n ${!v:-} ]] || die "${v} is not set (see the header of ${BASH_SOURCE[0]})"
  done
}

peer_schema() {
  local s=${PEER_SCHEMA:-public}
  [[ ${s} =~ ^[a-z_][a-z0-9_]{0,62}$ ]] ||
    die "PEER_SCHEMA must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), got '${s}'"
  printf '%s\n' "${s}"
}

# Slot and publication names: lower-case letters, digits and '_' (PostgreSQL's slot naming
# rule), at most 63 bytes, one per schema and topic so peers for two topics do not collide.
slot_name() {
  local n
  n="dbz_$(peer_schema)_${PEER_TOPIC,,}"
  n="${n//[^a-z0-9_]/_}"
  printf '%s\n' "${n:0:63}"
}

psql_db() { PGOPTIONS="-c client_min_messages=warning" psql "${DATABASE_URL}" -X -v ON_ERROR_STOP=1 -q "$@"; }

cmd_setup() {
  command -v java >/dev/null || die "java (17+) is missing: run scripts/setup"
  command -v mvn >/dev/null || die "mvn is missing: run scripts/setup"
  local hash stamp="${libs}/.pom.sha256"
  hash="$(sha256sum "${here}/pom.xml" | cut -d' ' -f1)"
  if [[ -f ${stamp} && "$(<"${stamp}")" == "${hash}" ]]; then return 0; fi
  local tmp="${libs}.tmp" mvn_log="${home}/mvn.log"
  mkdir -p "${home}"
  rm -rf "${tmp}"
  log "assembling Kafka Connect ${kafka_version} + Debezium ${debezium_version} from Maven Central"
  if ! mvn -B -Dstyle.color=never -f "${here}/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="${tmp}" >"${mvn_log}" 2>&1; then
    tail -n 30 "${mvn_log}" >&2
    die "maven failed (full log: ${mvn_log})"
  fi
  [[ -f ${tmp}/debezium-connector-postgres-${debezium_version}.jar &&
    -f ${tmp}/connect-runtime-${kafka_version}.jar ]] || die "maven did not produce the connector and Connect jars in ${tmp}"
  printf '%s\n' "${hash}" >"${tmp}/.pom.sha256"
  rm -rf "${libs}"
  mv "${tmp}" "${libs}"
}

cmd_schema() {
  need_env DATABASE_URL PEER_TOPIC
  local schema slot level active
  schema="$(peer_schema)"
  slot="$(slot_name)"
  level="$(psql_db -Atc 'SHOW wal_level')"
  [[ ${level} == logical ]] ||
    die "the server's wal_level is '${level}'; Debezium needs logical (scripts/services: restart postgres with OUTBOX_PG_WAL_LEVEL=logical)"
  active="$(psql_db -Atc "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '${slot}' AND active")"
  [[ -z ${active} ]] || die "replication slot ${slot} is in use by backend ${active}: stop 'peer.sh start' first"
  # The table in Debezium's documented default shape, except payload: text, not jsonb, so the
  # message value is the inserted bytes verbatim (jsonb re-formats the document).
  # The publication and the slot are created here, before any row: pgoutput decodes a change only
  # for a publication that existed when it was written, and the slot keeps the WAL from now on,
  # so a backlog inserted while the connector is stopped is read from the slot when it starts.
  psql_db >/dev/null <<SQL
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}';
DROP PUBLICATION IF EXISTS ${slot};
CREATE SCHEMA IF NOT EXISTS ${schema};
DROP TABLE IF EXISTS ${schema}.${table};
CREATE TABLE ${schema}.${table} (
  id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload text
);
CREATE PUBLICATION ${slot} FOR TABLE ${schema}.${table} WITH (publish = 'insert');
SELECT 1 FROM pg_create_logical_replication_slot('${slot}', 'pgoutput');
SQL
  rm -rf "${run_dir}"
}

cmd_teardown() {
  need_env DATABASE_URL PEER_TOPIC
  local schema slot
  schema="$(peer_schema)"
  slot="$(slot_name)"
  psql_db >/dev/null <<SQL
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}';
DROP PUBLICATION IF EXISTS ${slot};
DROP TABLE IF EXISTS ${schema}.${table};
SQL
  rm -rf "${run_dir}"
}

cmd_insert_sql() {
  printf "INSERT INTO %s.%s (aggregatetype, aggregateid, type, payload) VALUES ('bench', \$1, 'bench', \$2)\n" \
    "$(peer_schema)" "${table}"
}

# Writes the worker and connector properties into ${run_dir} from the environment.
write_config() {
  local url=${DATABASE_URL} re='^postgres(ql)?://(([^:@/]*)(:([^@/]*))?@)?([^:/?]+)(:([0-9]+))?/([^?]+)'
  [[ ${url} =~ ${re} ]] ||
    die "DATABASE_URL must look like postgresql://user[:password]@host[:port]/dbname, got '${url}'"
  local user=${BASH_REMATCH[3]:-${PGUSER:-${USER}}} password=${BASH_REMATCH[5]:-${PGPASSWORD:-}}
  local host=${BASH_REMATCH[6]} port=${BASH_REMATCH[8]:-5432} dbname=${BASH_REMATCH[9]}
  local schema slot
  schema="$(peer_schema)"
  slot="$(slot_name)"
  mkdir -p "${run_dir}"
  cat >"${run_dir}/worker.properties" <<EOF
# Generated by bench/peers/debezium/peer.sh start; see README.md for each setting.
bootstrap.servers=${KAFKA_BOOTSTRAP_SERVERS}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=${run_dir}/offsets.dat
offset.flush.interval.ms=1000
plugin.discovery=service_load
listeners=http://127.0.0.1:0
producer.enable.idempotence=true
producer.max.in.flight.requests.per.connection=5
producer.compression.type=lz4
producer.linger.ms=5
producer.batch.size=262144
EOF
  cat >"${run_dir}/connector.properties" <<EOF
# Generated by bench/peers/debezium/peer.sh start; see README.md for each setting.
name=debezium-outbox-${slot}
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=${host}
database.port=${port}
database.user=${user}
database.password=${password}
database.dbname=${dbname}
topic.prefix=bench-deb
plugin.name=pgoutput
slot.name=${slot}
publication.name=${slot}
publication.autocreate.mode=filtered
table.include.list=${schema}.${table}
snapshot.mode=no_data
tombstones.on.delete=false
max.batch.size=8192
max.queue.size=32768
poll.interval.ms=10
topic.creation.default.partitions=${PEER_PARTITIONS:-6}
topic.creation.default.replication.factor=-1
transforms=outbox
transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
transforms.outbox.route.topic.replacement=${PEER_TOPIC}
transforms.outbox.table.field.event.key=aggregateid
transforms.outbox.table.field.event.payload=payload
EOF
  chmod 600 "${run_dir}/connector.properties"
}

cmd_start() {
  need_env DATABASE_URL KAFKA_BOOTSTRAP_SERVERS PEER_TOPIC
  [[ -f ${libs}/.pom.sha256 ]] || die "jars missing in ${libs}: run 'peer.sh setup' first"
  write_config
  # Heap as connect-*.sh's default floor, capped at 1 GiB; GC flags are kafka-run-class.sh's
  # KAFKA_JVM_PERFORMANCE_OPTS. ConnectStandalone's shutdown hook stops the connector and
  # flushes its offsets on SIGTERM.
  exec java -Xms512m -Xmx1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="${here}/log4j2.properties" \
    -cp "${libs}/*" org.apache.kafka.connect.cli.ConnectStandalone \
    "${run_dir}/worker.properties" "${run_dir}/connector.properties"
}

cmd_describe() {
  echo "debezium ${debezium_version} (postgres pgoutput + outbox EventRouter, Kafka Connect ${kafka_version} standalone):" \
    "order per key: yes, one task per connector (a second instance needs its own slot and duplicates every row);" \
    "rows: kept (insert-only, the table grows unless the writer deletes in the same transaction);" \
    "at-least-once (replays up to offset.flush.interval.ms after a crash)"
}

case "${1:-}" in
  setup) cmd_setup ;;
  schema) cmd_schema ;;
  insert-sql) cmd_insert_sql ;;
  start) cmd_start ;;
  describe) cmd_describe ;;
  teardown) cmd_teardown ;;
  *)
    sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
