#include "relay/admin.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/pqxx>

#include "relay/sql_arrays.hpp"

namespace relay {

unknown_dead_letters::unknown_dead_letters(std::vector<std::int64_t> ids)
    : std::runtime_error(fmt::format(
          "no dead letter with id {}: nothing was requeued (see `walletctl dead-letters list`)", fmt::join(ids, ", "))),
      ids_(std::move(ids)) {}

std::vector<dead_letter> list_dead_letters(pqxx::connection& connection, std::size_t limit) {
  pqxx::read_transaction tx(connection);
  const auto result = tx.exec_params(
      "SELECT id, topic, key, length(payload), attempts, last_error, "
      "       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
      "       to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM outbox_dead_letters ORDER BY id LIMIT $1",
      limit);
  std::vector<dead_letter> out;
  out.reserve(result.size());
  for (const auto& r : result) {
    dead_letter d;
    d.id = r[0].as<std::int64_t>();
    d.topic = r[1].as<std::string>();
    if (!r[2].is_null()) d.key = r[2].as<std::string>();
    d.payload_bytes = r[3].as<std::int64_t>();
    d.attempts = r[4].as<int>();
    d.last_error = r[5].as<std::string>();
    d.created_at = r[6].as<std::string>();
    d.dead_at = r[7].as<std::string>();
    out.push_back(std::move(d));
  }
  return out;
}

namespace {

// Throws unknown_dead_letters naming the ids of `ids` that are not dead letters.
void require_dead_letters(pqxx::work& tx, std::span<const std::int64_t> ids) {
  std::vector<std::int64_t> unknown;
  for (const auto& r : tx.exec_params("SELECT requested FROM unnest($1::bigint[]) AS requested "
                                      "WHERE NOT EXISTS (SELECT 1 FROM outbox_dead_letters d WHERE d.id = requested) "
                                      "ORDER BY requested",
                                      array_literal(ids))) {
    unknown.push_back(r[0].as<std::int64_t>());
  }
  if (!unknown.empty()) throw unknown_dead_letters(std::move(unknown));
}

std::vector<std::int64_t> sorted_ids(const pqxx::result& result) {
  std::vector<std::int64_t> ids;
  ids.reserve(result.size());
  for (const auto& r : result) ids.push_back(r[0].as<std::int64_t>());
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

std::vector<std::int64_t> requeue_dead_letters(pqxx::connection& connection, std::span<const std::int64_t> ids) {
  pqxx::work tx(connection);
  const bool all = ids.empty();
  if (!all) require_dead_letters(tx, ids);
  // The original id keeps the message traceable (logs, the outbox-id header consumers dedupe on)
  // and puts it back at its place in its key's order. The insert trigger wakes the relays.
  const auto requeued = sorted_ids(tx.exec_params(
      "WITH moved AS (DELETE FROM outbox_dead_letters WHERE $1::boolean OR id = ANY($2::bigint[]) "
      "               RETURNING id, topic, key, payload, headers, created_at) "
      "INSERT INTO outbox_messages (id, topic, key, payload, headers, created_at) OVERRIDING SYSTEM VALUE "
      "SELECT id, topic, key, payload, headers, created_at FROM moved ORDER BY id "
      "RETURNING id",
      all, all ? std::string("{}") : array_literal(ids)));
  tx.commit();
  return requeued;
}

std::vector<std::int64_t> discard_dead_letters(pqxx::connection& connection, std::span<const std::int64_t> ids) {
  if (ids.empty()) throw std::invalid_argument("discard_dead_letters: no ids");
  pqxx::work tx(connection);
  require_dead_letters(tx, ids);
  const auto discarded = sorted_ids(tx.exec_params(
      "WITH gone AS (DELETE FROM outbox_dead_letters WHERE id = ANY($1::bigint[]) "
      "              RETURNING id, topic, key, payload, headers, created_at, attempts, last_error, dead_at) "
      "INSERT INTO outbox_discarded_dead_letters "
      "       (id, topic, key, payload, headers, created_at, attempts, last_error, dead_at) "
      "SELECT * FROM gone RETURNING id",
      array_literal(ids)));
  // Relays wait for a NOTIFY or their poll interval: tell them the held keys may flow now.
  tx.exec("SELECT pg_notify('outbox_messages', current_schema())");
  tx.commit();
  return discarded;
}

outbox_status read_outbox_status(pqxx::connection& connection) {
  pqxx::read_transaction tx(connection);
  outbox_status status;
  const auto totals = tx.exec1(
      "SELECT current_schema(), "
      "       (SELECT count(*) FROM outbox_messages), "
      "       (SELECT extract(epoch FROM clock_timestamp() - created_at)::float8 FROM outbox_messages ORDER BY id "
      "LIMIT 1), "
      "       (SELECT count(*) FROM outbox_messages WHERE attempts > 0), "
      "       (SELECT count(*) FROM outbox_dead_letters)");
  status.schema = totals[0].is_null() ? std::string("(none)") : totals[0].as<std::string>();
  status.pending = totals[1].as<std::int64_t>();
  if (!totals[2].is_null()) status.oldest_age_seconds = totals[2].as<double>();
  status.retrying = totals[3].as<std::int64_t>();
  status.dead_letters = totals[4].as<std::int64_t>();

  const auto held = tx.exec1(
      "SELECT (SELECT count(DISTINCT key) FROM outbox_dead_letters WHERE key IS NOT NULL), "
      "       (SELECT count(*) FROM outbox_messages o "
      "        WHERE EXISTS (SELECT 1 FROM outbox_dead_letters d WHERE d.key = o.key AND d.id < o.id)), "
      "       (SELECT extract(epoch FROM clock_timestamp() - min(dead_at))::float8 FROM outbox_dead_letters "
      "        WHERE key IS NOT NULL)");
  status.held_keys = held[0].as<std::int64_t>();
  status.held_rows = held[1].as<std::int64_t>();
  if (!held[2].is_null()) status.oldest_held_seconds = held[2].as<double>();

  for (const auto& r :
       tx.exec("SELECT topic, sum(pending)::bigint, sum(retrying)::bigint, sum(dead)::bigint FROM ("
               "  SELECT topic, 1 AS pending, (attempts > 0)::int AS retrying, 0 AS dead FROM outbox_messages"
               "  UNION ALL SELECT topic, 0, 0, 1 FROM outbox_dead_letters) t "
               "GROUP BY topic ORDER BY topic")) {
    status.topics.push_back(
        {r[0].as<std::string>(), r[1].as<std::int64_t>(), r[2].as<std::int64_t>(), r[3].as<std::int64_t>()});
  }
  // Relays of this schema (active or standby), and the leases each holds: advisory locks of class
  // hashtext(schema), which pg_locks shows as an unsigned oid. The server clips application_name
  // to 63 bytes.
  for (const auto& r : tx.exec(
           "WITH names AS (SELECT 'outbox-relay:' || current_schema() AS active, "
           "                      'outbox-relay-standby:' || current_schema() AS standby) "
           "SELECT a.pid, coalesce(host(a.client_addr) || ':' || a.client_port, 'local'), "
           "       (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted "
           "          AND l.objsubid = 2 AND l.classid::bigint = (hashtext(current_schema())::bigint & 4294967295)), "
           "       a.application_name LIKE 'outbox-relay-standby:%' "
           "FROM pg_stat_activity a, names n "
           "WHERE a.datname = current_database() "
           "  AND (a.application_name IN (n.active, n.standby) "
           "       OR (octet_length(a.application_name) = 63 "
           "           AND (starts_with(n.active, a.application_name) OR starts_with(n.standby, a.application_name)))) "
           "ORDER BY a.pid")) {
    status.relays.push_back({r[0].as<int>(), r[1].as<std::string>(), r[2].as<std::int64_t>(), r[3].as<bool>()});
  }
  return status;
}

}  // namespace relay
