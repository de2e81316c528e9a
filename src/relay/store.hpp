#pragma once
// The relay's side of PostgreSQL: one session that holds what a relay is (its leases, its LISTEN,
// its heartbeats) and runs its claims, plus a second session for claims only, opened when the
// relay first claims a batch while another is still open (the backlog pipeline, see service.cpp).
// Both live and die together: after any failure the caller drops the store as a whole.
//
//   * Leases: partition p (outbox_messages.partition_no, 0..255) belongs to the session holding
//     the advisory lock pg_try_advisory_lock(hashtext(current_schema()), p). Relays of other
//     schemas use another class id and never meet.
//   * Claims: one transaction per batch, SELECT ... FOR UPDATE SKIP LOCKED in id order over the
//     owned partitions, skipping rows (and later rows of their key) that wait for a retry.
//   * Wake-ups: LISTEN outbox_messages; the insert trigger's payload names the schema.
//
// Not thread-safe: one thread (the relay loop) uses a store. Every call may throw the pqxx
// exceptions of a failed or broken connection (pqxx::broken_connection, pqxx::sql_error, ...);
// after any exception other than from claimed_batch::reject/dead_letter the caller drops the
// store and connects a new one (its leases are gone with the old session).
// Blocking: each statement is bounded by the session's statement_timeout (30 s); connecting by
// [database] connect_timeout.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/database.hpp"
#include "relay/message.hpp"

#include <pqxx/connection>

namespace pqxx {
class transaction_base;
}  // namespace pqxx

namespace relay {

/// The database is reachable but not usable by a relay (no such schema, no outbox table).
class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The connection's view of the relay group, taken in one statement between batches.
struct heartbeat {
  /// Sessions named like ours (application_name "outbox-relay:<schema>"), ourselves included; >= 1.
  std::size_t live_relays = 1;
  /// Some row of the owned partitions could be claimed now.
  bool has_work = false;
  /// Age of the oldest row in the table (any partition); nullopt when the table is empty.
  std::optional<double> oldest_age_seconds;
  /// Rows in the table when asked for: exact up to 100,000, above that the planner's estimate.
  std::optional<std::int64_t> pending_rows;
};

class store;

/// A claim transaction: the rows it locked, and what to do with them before commit().
/// Destroying it without commit() rolls back (rows stay, unlocked). Must not outlive its store.
/// After commit() or roll_back() only rows() may be used.
class claimed_batch {
 public:
  claimed_batch(claimed_batch&&) noexcept;
  claimed_batch& operator=(claimed_batch&& other) noexcept;  // rolls back the batch it held
  ~claimed_batch();

  const std::vector<outbox_row>& rows() const noexcept { return rows_; }

  /// The broker refused `row`: attempts + 1, last_error, next_attempt_at = now + retry_in.
  void reject(const outbox_row& row, std::string_view error, std::chrono::milliseconds retry_in);
  /// Moves `row` to outbox_dead_letters with attempts + 1 and `error`.
  void dead_letter(const outbox_row& row, std::string_view error);
  /// Deletes the rows the broker acknowledged.
  void remove(std::span<const std::int64_t> ids);
  /// Commits. A pqxx::in_doubt_error means the outcome is unknown: never retry it; reconnect, and
  /// rows still present are published again (a duplicate, never a loss).
  void commit();
  /// Ends the transaction without changes: its rows stay, unlocked, for a later claim.
  void roll_back() noexcept;

 private:
  friend class store;
  claimed_batch(std::unique_ptr<pqxx::transaction_base> tx, std::vector<outbox_row> rows, bool* busy);
  void close() noexcept;

  std::unique_ptr<pqxx::transaction_base> tx_;
  std::vector<outbox_row> rows_;
  bool* busy_;  // the store's flag for the connection this batch occupies
};

class store {
 public:
  /// Connects, checks the schema, names the session, sets its timeouts, prepares the statements
  /// and LISTENs. `transaction_limit` bounds how long a claim transaction may stay open
  /// (idle_in_transaction_session_timeout): a relay frozen mid-batch loses its locks after it;
  /// `synchronous_commit` is the sessions' setting (see outbox_config::synchronous_commit).
  /// Throws pqxx::broken_connection (unreachable) or store_error (schema not migrated).
  store(const common::database_config& config, std::chrono::milliseconds transaction_limit,
        bool synchronous_commit);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const std::string& schema() const noexcept { return schema_; }
  /// "outbox-relay:<schema>", at most 63 bytes: how relays of one schema find each other.
  const std::string& application_name() const noexcept { return application_name_; }

  /// A relay that cannot reach its broker steps aside: it renames its session
  /// "outbox-relay-standby:<schema>" so that the others leave it out of the fair share (and take
  /// over the partitions it released); set_standby(false) restores the name.
  void set_standby(bool standby);

  /// Waits up to `timeout` for a NOTIFY of our schema; true when one arrived (also if it had
  /// arrived earlier and was not reported yet).
  bool await_notification(std::chrono::milliseconds timeout);

  heartbeat beat(std::span<const std::int16_t> owned, bool count_rows);

  /// Tries to lock `candidates` in order until `limit` are locked; returns those locked.
  std::vector<std::int16_t> try_lock_partitions(std::span<const std::int16_t> candidates, std::size_t limit);
  /// Releases partitions this session holds.
  void unlock_partitions(std::span<const std::int16_t> partitions);

  /// Opens a transaction and locks up to `limit` claimable rows of `owned`, in id order; rows
  /// locked by an open batch are skipped. At most two batches may be open at once: the first one
  /// opened on the main session, another one on the claim session. The calls above use the main
  /// session and must not be made while a batch is open on it.
  claimed_batch claim(std::span<const std::int16_t> owned, std::size_t limit);

 private:
  class listener;

  pqxx::connection& free_connection(bool*& busy);

  std::string connection_string_;
  std::chrono::milliseconds transaction_limit_;
  bool synchronous_commit_;
  std::unique_ptr<pqxx::connection> claim_connection_;  // opened on the first overlapping claim
  bool connection_busy_ = false;
  bool claim_connection_busy_ = false;
  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<listener> listener_;  // declared after connection_: destroyed (UNLISTEN) first
  std::string schema_;
  std::string application_name_;
  int lock_class_ = 0;
  bool notified_ = false;
};

/// "{1,2,3}": a PostgreSQL array literal of `values`.
std::string array_literal(std::span<const std::int16_t> values);
std::string array_literal(std::span<const std::int64_t> values);

}  // namespace relay
