#include "relay/store.hpp"

#include "relay/sql_arrays.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

namespace relay {

namespace {

constexpr const char* notify_channel = "outbox_messages";
constexpr std::size_t max_error_length = 2000;

// A row is claimable unless it waits for its own retry, or an earlier row of its key does, or
// (dead_letter_blocks_key) an earlier row of its key is a dead letter.
// OFFSET 0 keeps the retry NOT EXISTS a per-row probe of the small outbox_messages_retrying index;
// flattened into an anti-join the planner materialises every retrying row and compares each
// claimed row against all of them (62 ms instead of 1.5 ms per 500-row claim at 1M rows).
// The per-row probe runs only when some row waits at all: the uncorrelated NOT EXISTS before the
// OR is an InitPlan, evaluated once per statement, and an OR stops at its first true argument.
// Measured: 0.8 -> 0.25 ms for the scan of a 1000-row claim when nothing waits.
std::string claimable(bool dead_letter_blocks_key) {
  std::string sql = R"(
      o.partition_no = ANY($1::smallint[])
  AND (o.attempts = 0 OR o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
  AND (NOT EXISTS (SELECT 1 FROM outbox_messages w WHERE w.attempts > 0 AND w.next_attempt_at > now())
       OR NOT EXISTS (SELECT 1 FROM outbox_messages r
                      WHERE r.attempts > 0 AND r.key = o.key AND r.id < o.id AND r.next_attempt_at > now()
                      OFFSET 0)))";
  if (dead_letter_blocks_key) {
    // The IN is an uncorrelated, hashed subplan: the held keys are read once per statement and each
    // row costs one hash probe; only rows of a held key run the correlated id check (a requeued
    // dead letter is older than the key's remaining dead letters, and must not wait for them).
    sql += R"(
  AND NOT (o.key IN (SELECT key FROM outbox_dead_letters WHERE key IS NOT NULL)
           AND EXISTS (SELECT 1 FROM outbox_dead_letters d WHERE d.key = o.key AND d.id < o.id)))";
  }
  return sql;
}

// $3: topics left out for now (blocked at the broker), so that the other topics flow.
// The fast path: one statement locks the batch (SKIP LOCKED, id order) and deletes it, by ctid
// (the CTE's locked row versions: a TID join, 0.9 instead of 1.5 ms per 1000 rows for a delete by
// id). The transaction commits only after the broker acknowledged every row; a rollback puts
// every row back. DELETE ... RETURNING promises no order: claim() sorts by id.
std::string claim_sql(bool dead_letter_blocks_key) {
  return fmt::format(R"(
WITH c AS (
  SELECT o.ctid FROM outbox_messages o
  WHERE {}
    AND o.topic <> ALL($3::text[])
  ORDER BY o.id
  LIMIT $2
  FOR UPDATE SKIP LOCKED)
DELETE FROM outbox_messages o USING c WHERE o.ctid = c.ctid
RETURNING o.id, o.topic, o.key, o.payload, o.headers::text, o.attempts,
          (extract(epoch FROM clock_timestamp() - o.created_at) * 1000000)::bigint)",
                     claimable(dead_letter_blocks_key));
}

// The slow path of a batch whose rows did not all reach the broker (claimed_batch::settle_slowly):
// the same rows locked again, not deleted, in a new transaction.
constexpr const char* relock_sql = "SELECT id FROM outbox_messages WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE";

// pending_rows: counting 1M rows costs ~150 ms, so the exact count stops at 100,000 and the
// planner's estimate (scaled to the table's current size) takes over. The CASE keeps the count
// from running at all when not asked for (an InitPlan runs only when its value is needed).
std::string beat_sql(bool dead_letter_blocks_key) {
  return fmt::format(R"(
SELECT (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $2),
       EXISTS (SELECT 1 FROM outbox_messages o WHERE {}),
       (SELECT extract(epoch FROM clock_timestamp() - created_at)::float8 FROM outbox_messages ORDER BY id LIMIT 1),
       CASE WHEN $3::boolean THEN (
         SELECT CASE WHEN exact.n <= 100000 THEN exact.n
                     ELSE greatest(exact.n, (
                       SELECT CASE WHEN c.relpages > 0
                                   THEN (c.reltuples / c.relpages
                                         * (pg_relation_size(c.oid) / current_setting('block_size')::integer))::bigint
                                   ELSE c.reltuples::bigint END
                       FROM pg_class c WHERE c.oid = 'outbox_messages'::regclass)) END
         FROM (SELECT count(*) AS n FROM (SELECT 1 FROM outbox_messages LIMIT 100001) capped) exact)
       END)",
                     claimable(dead_letter_blocks_key));
}

// A key is held while it has a dead letter (with dead_letter_blocks_key its later rows wait).
constexpr const char* held_keys_sql = R"(
SELECT count(DISTINCT key), extract(epoch FROM clock_timestamp() - min(dead_at))::float8
FROM outbox_dead_letters WHERE key IS NOT NULL)";

constexpr const char* try_lock_sql =
    "SELECT p FROM unnest($2::integer[]) AS p WHERE pg_try_advisory_lock($1::integer, p) LIMIT $3";
constexpr const char* unlock_sql =
    "SELECT count(*) FILTER (WHERE pg_advisory_unlock($1::integer, p)) FROM unnest($2::integer[]) AS p";
constexpr const char* delete_sql = "DELETE FROM outbox_messages WHERE id = ANY($1::bigint[])";
constexpr const char* reject_sql = R"(
UPDATE outbox_messages
SET attempts = attempts + 1, last_error = $2,
    next_attempt_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
WHERE id = $1)";
constexpr const char* dead_letter_sql = R"(
WITH moved AS (DELETE FROM outbox_messages WHERE id = $1
               RETURNING id, topic, key, payload, headers, created_at, attempts)
INSERT INTO outbox_dead_letters (id, topic, key, payload, headers, created_at, attempts, last_error)
SELECT id, topic, key, payload, headers, created_at, attempts + 1, $2 FROM moved)";

std::string truncated(std::string_view error) {
  return std::string(error.substr(0, std::min(error.size(), max_error_length)));
}

// TCP keepalives on our side, so a silently dead server is noticed (unless the URL sets its own).
std::string with_keepalives(std::string connection_string) {
  if (connection_string.find("keepalives") != std::string::npos) return connection_string;
  connection_string += connection_string.find('?') == std::string::npos ? '?' : '&';
  connection_string += "keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3";
  return connection_string;
}

}  // namespace

class store::listener final : public pqxx::notification_receiver {
 public:
  listener(pqxx::connection_base& connection, std::string schema, bool& notified)
      : pqxx::notification_receiver(connection, notify_channel), schema_(std::move(schema)), notified_(notified) {}
  void operator()(const std::string& payload, int) override {
    if (payload == schema_) notified_ = true;
  }

 private:
  std::string schema_;
  bool& notified_;
};

namespace {

// A session as every relay connection has it: no silent reconnect (a new session would lack our
// advisory locks and row locks while we think we hold them), named, with its timeouts.
// Returns the application_name as the server stores it.
std::string set_up_session(pqxx::connection& connection, const std::string& application_name,
                           const session_settings& settings) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
  pqxx::nontransaction tx(connection);
  // The server stores application_name cleaned (printable ASCII) and clipped to 63 bytes: keep
  // the value it reports, since that is what other relays see in pg_stat_activity.
  return tx
      .exec_params1(
          "SELECT set_config('application_name', $1, false), "
          "       set_config('statement_timeout', '30s', false), "
          "       set_config('idle_in_transaction_session_timeout', $2, false), "
          // The freeze bound between batches (PostgreSQL 14+).
          "       set_config('idle_session_timeout', $3, false), "
          // Server-side keepalives: a relay host that vanishes loses its leases
          // within ~25 s.
          "       set_config('tcp_keepalives_idle', '10', false), "
          "       set_config('tcp_keepalives_interval', '5', false), "
          "       set_config('tcp_keepalives_count', '3', false), "
          "       set_config('synchronous_commit', $4, false), "
          // The claim's cost estimate grows as a relay owns fewer partitions (the LIMIT is
          // expected to scan further): past jit_above_cost every claim is JIT-compiled anew.
          // Measured at 300k rows: 64 of 256 partitions owned, 5 -> 93 ms a claim; 16 owned,
          // 644 ms (570 of it compiling). A claim is an OLTP query: never JIT it.
          "       set_config('jit', 'off', false)",
          application_name, std::to_string(settings.transaction_limit.count()),
          std::to_string(settings.idle_limit.count()), settings.synchronous_commit ? "on" : "off")[0]
      .as<std::string>();
}

void prepare_all(pqxx::connection& connection, std::span<const std::pair<const char*, std::string>> statements) {
  for (const auto& [name, sql] : statements) {
    connection.prepare(name, sql);
    connection.prepare_now(name);
  }
}

// What a claim transaction runs, on either connection.
std::vector<std::pair<const char*, std::string>> batch_statements(bool dead_letter_blocks_key) {
  return {
      {"relay_claim", claim_sql(dead_letter_blocks_key)},
      {"relay_relock", relock_sql},
      {"relay_delete", delete_sql},
      {"relay_reject", reject_sql},
      {"relay_dead_letter", dead_letter_sql},
      {"relay_lock", try_lock_sql},
      {"relay_unlock", unlock_sql},
  };
}
// What only the main connection runs.
std::vector<std::pair<const char*, std::string>> session_statements(bool dead_letter_blocks_key) {
  return {
      {"relay_beat", beat_sql(dead_letter_blocks_key)},
      {"relay_held_keys", held_keys_sql},
  };
}

std::vector<std::int16_t> partitions_of(const pqxx::result& result) {
  std::vector<std::int16_t> out;
  out.reserve(result.size());
  for (const auto& r : result) out.push_back(r[0].as<std::int16_t>());
  return out;
}

}  // namespace

session_settings session_settings_for(const outbox_config& outbox) {
  session_settings settings;
  settings.transaction_limit = transaction_limit(outbox);
  settings.idle_limit = outbox.lease_timeout;
  settings.synchronous_commit = outbox.synchronous_commit;
  settings.dead_letter_blocks_key = outbox.dead_letter_blocks_key;
  return settings;
}

store::store(const common::database_config& config, const session_settings& settings)
    : connection_string_(with_keepalives(common::connection_string(config))), settings_(settings) {
  connection_ = std::make_unique<pqxx::connection>(connection_string_);
  {
    pqxx::nontransaction tx(*connection_);
    const auto row = tx.exec1(
        "SELECT current_schema(), hashtext(current_schema()), "
        "hashtext(current_schema() || ':claims'), "
        "to_regclass('outbox_messages') IS NOT NULL, to_regclass('outbox_dead_letters') IS NOT NULL");
    if (row[0].is_null()) {
      throw store_error("database: the search_path names no existing schema: create it and run `walletctl migrate up`");
    }
    schema_ = row[0].as<std::string>();
    lock_class_ = row[1].as<int>();
    claims_lock_class_ = row[2].as<int>();
    if (!row[3].as<bool>() || !row[4].as<bool>()) {
      throw store_error(
          fmt::format("database: schema \"{}\" has no outbox_messages/outbox_dead_letters table: run "
                      "`walletctl migrate up` against it",
                      schema_));
    }
  }
  application_name_ = set_up_session(*connection_, "outbox-relay:" + schema_, settings_);
  prepare_all(*connection_, batch_statements(settings_.dead_letter_blocks_key));
  prepare_all(*connection_, session_statements(settings_.dead_letter_blocks_key));
  listener_ = std::make_unique<listener>(*connection_, schema_, notified_);

  claim_connection_ = std::make_unique<pqxx::connection>(connection_string_);
  set_up_session(*claim_connection_, "outbox-relay-claims:" + schema_, settings_);
  prepare_all(*claim_connection_, batch_statements(settings_.dead_letter_blocks_key));
}

store::~store() = default;

void store::set_standby(bool standby) {
  pqxx::nontransaction tx(*connection_);
  tx.exec_params("SELECT set_config('application_name', $1, false)",
                 standby ? "outbox-relay-standby:" + schema_ : application_name_);
}

bool store::await_notification(std::chrono::milliseconds timeout) {
  if (!notified_) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    connection_->await_notification(static_cast<long>(us / 1'000'000), static_cast<long>(us % 1'000'000));
    if (!connection_->is_open()) throw pqxx::broken_connection("database connection lost while waiting for NOTIFY");
  }
  return std::exchange(notified_, false);
}

heartbeat store::beat(std::span<const std::int16_t> owned, bool count_rows) {
  pqxx::nontransaction tx(*connection_);
  const auto row = tx.exec_prepared1("relay_beat", array_literal(owned), application_name_, count_rows);
  heartbeat out;
  out.live_relays = std::max<std::size_t>(1, row[0].as<std::size_t>());
  out.has_work = row[1].as<bool>();
  if (!row[2].is_null()) out.oldest_age_seconds = row[2].as<double>();
  if (!row[3].is_null()) out.pending_rows = row[3].as<std::int64_t>();
  return out;
}

std::pair<std::int64_t, std::optional<double>> store::held_keys() {
  pqxx::nontransaction tx(*connection_);
  const auto row = tx.exec_prepared1("relay_held_keys");
  std::optional<double> age;
  if (!row[1].is_null()) age = row[1].as<double>();
  return {row[0].as<std::int64_t>(), age};
}

void store::keep_alive() {
  if (!connection_busy_) pqxx::nontransaction(*connection_).exec("SELECT 1");
  if (!claim_connection_busy_) pqxx::nontransaction(*claim_connection_).exec("SELECT 1");
}

std::vector<std::int16_t> store::try_lock_partitions(std::span<const std::int16_t> candidates, std::size_t limit) {
  if (candidates.empty() || limit == 0) return {};
  // The main session first, then the claims session on what the main one got; what the claims
  // session cannot get (an old owner's claims session still lives) is released again.
  const auto mains = partitions_of(
      pqxx::nontransaction(*connection_).exec_prepared("relay_lock", lock_class_, array_literal(candidates), limit));
  if (mains.empty()) return {};
  auto both = partitions_of(pqxx::nontransaction(*claim_connection_)
                                .exec_prepared("relay_lock", claims_lock_class_, array_literal(mains), mains.size()));
  if (both.size() != mains.size()) {
    std::vector<std::int16_t> refused;
    for (const auto p : mains) {
      if (std::find(both.begin(), both.end(), p) == both.end()) refused.push_back(p);
    }
    pqxx::nontransaction(*connection_).exec_prepared("relay_unlock", lock_class_, array_literal(refused));
    spdlog::debug(
        "partition leases: {} partitions free on the main lock class are still held by another relay's "
        "claims session (its main session ended first); not taken",
        refused.size());
  }
  return both;
}

void store::unlock_partitions(std::span<const std::int16_t> partitions) {
  if (partitions.empty()) return;
  const auto literal = array_literal(partitions);
  // Main session first: until the claims lock goes too, nobody can take the partition.
  const auto released =
      pqxx::nontransaction(*connection_).exec_prepared1("relay_unlock", lock_class_, literal)[0].as<std::size_t>();
  pqxx::nontransaction(*claim_connection_).exec_prepared1("relay_unlock", claims_lock_class_, literal);
  if (released != partitions.size()) {
    spdlog::warn("released {} of {} partition leases: the others were not held by this session", released,
                 partitions.size());
  }
}

pqxx::connection& store::free_connection(bool*& busy) {
  if (!connection_busy_) {
    busy = &connection_busy_;
    return *connection_;
  }
  if (claim_connection_busy_) throw std::logic_error("relay store: a third claim while two batches are open");
  busy = &claim_connection_busy_;
  return *claim_connection_;
}

claimed_batch store::claim(std::span<const std::int16_t> owned, std::size_t limit,
                           std::span<const std::string> excluded_topics) {
  bool* busy = nullptr;
  auto& connection = free_connection(busy);
  auto tx = std::make_unique<pqxx::work>(connection, "relay_claim");
  const auto result = tx->exec_prepared("relay_claim", array_literal(owned), limit, array_literal(excluded_topics));
  std::vector<outbox_row> rows;
  rows.reserve(result.size());
  for (const auto& r : result) {
    outbox_row row;
    row.id = r[0].as<std::int64_t>();
    row.topic = r[1].as<std::string>();
    if (!r[2].is_null()) row.key = r[2].as<std::string>();
    row.payload = pqxx::binarystring(r[3]).str();
    row.headers = r[4].as<std::string>();
    row.attempts = r[5].as<int>();
    row.age_seconds = static_cast<double>(r[6].as<std::int64_t>()) / 1e6;  // an integer parses faster
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const outbox_row& a, const outbox_row& b) { return a.id < b.id; });
  return claimed_batch(std::move(tx), std::move(rows), busy, connection);
}

claimed_batch::claimed_batch(std::unique_ptr<pqxx::transaction_base> tx, std::vector<outbox_row> rows, bool* busy,
                             pqxx::connection& connection)
    : tx_(std::move(tx)), rows_(std::move(rows)), busy_(busy), connection_(&connection) {
  *busy_ = true;
}

claimed_batch::claimed_batch(claimed_batch&& other) noexcept
    : tx_(std::move(other.tx_)),
      rows_(std::move(other.rows_)),
      busy_(std::exchange(other.busy_, nullptr)),
      connection_(other.connection_),
      deleted_(other.deleted_) {}

claimed_batch& claimed_batch::operator=(claimed_batch&& other) noexcept {
  if (this != &other) {
    close();
    tx_ = std::move(other.tx_);
    rows_ = std::move(other.rows_);
    busy_ = std::exchange(other.busy_, nullptr);
    connection_ = other.connection_;
    deleted_ = other.deleted_;
  }
  return *this;
}

claimed_batch::~claimed_batch() { close(); }

void claimed_batch::close() noexcept {
  tx_.reset();  // pqxx aborts a transaction still open: the rows stay, unlocked
  if (busy_ != nullptr) *std::exchange(busy_, nullptr) = false;
}

void claimed_batch::settle_slowly() {
  if (!deleted_) return;
  tx_.reset();  // rolls back: every row is back, unlocked
  deleted_ = false;
  // The session still holds the partitions' leases and no other batch of ours is open on it
  // (the caller rolled back any batch claimed ahead), so nobody takes the rows meanwhile.
  tx_ = std::make_unique<pqxx::work>(*connection_, "relay_settle");
  std::vector<std::int64_t> ids;
  ids.reserve(rows_.size());
  for (const auto& row : rows_) ids.push_back(row.id);
  const auto locked = tx_->exec_prepared("relay_relock", array_literal(ids));
  if (locked.size() != ids.size()) {
    spdlog::warn("batch of {}: {} rows were gone when it was locked again (removed by another session)", ids.size(),
                 ids.size() - locked.size());
  }
}

void claimed_batch::reject(const outbox_row& row, std::string_view error, std::chrono::milliseconds retry_in) {
  require_settling("reject");
  tx_->exec_prepared0("relay_reject", row.id, truncated(error), static_cast<long long>(retry_in.count()));
}

void claimed_batch::dead_letter(const outbox_row& row, std::string_view error) {
  require_settling("dead_letter");
  tx_->exec_prepared0("relay_dead_letter", row.id, truncated(error));
}

void claimed_batch::remove(std::span<const std::int64_t> ids) {
  require_settling("remove");
  if (ids.empty()) return;
  tx_->exec_prepared0("relay_delete", array_literal(ids));
}

void claimed_batch::commit() {
  tx_->commit();
  close();
}

void claimed_batch::roll_back() noexcept { close(); }

void claimed_batch::require_settling(const char* what) const {
  if (deleted_) throw std::logic_error(fmt::format("relay store: {}() on a batch still on the fast path", what));
}

void claimed_batch::confirm_held() { tx_->exec("SELECT 1"); }

}  // namespace relay
