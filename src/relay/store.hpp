#pragma once
// The relay's side of PostgreSQL: two sessions that live and die together. The main session holds
// what a relay is (its leases, its LISTEN, its heartbeats) and runs claims; the claims session runs
// the claims of the backlog pipeline (a batch claimed while another is still open, see
// pipeline.cpp). After any failure the caller drops the store as a whole.
//
//   * Leases: partition p (outbox_messages.partition_no, 0..255) belongs to a relay when BOTH its
//     sessions hold their advisory lock on it: the main session pg_advisory_lock(hashtext(schema), p),
//     the claims session pg_advisory_lock(hashtext(schema || ':claims'), p). A relay takes a
//     partition only when it gets both, so as long as either session of the old owner lives, that
//     session's row locks and batches cannot be overtaken: when one session dies alone, nobody
//     else can take the partitions until the relay notices and closes the other.
//   * Freeze bound: both sessions run with idle_session_timeout = lease_timeout and
//     idle_in_transaction_session_timeout = transaction_limit, so the server ends the sessions of
//     a relay that stops talking (SIGSTOP, a VM pause) and its leases go with them; keep_alive()
//     keeps a working relay's idle sessions from reaching the limit.
//   * Claims: one transaction per batch; one statement locks (FOR UPDATE SKIP LOCKED, id order,
//     over the owned partitions) and deletes the batch, skipping rows (and later rows of their
//     key) that wait for a retry, and, with dead_letter_blocks_key, later rows of a key that has a
//     dead letter. It commits once the broker acknowledged every row; a rollback (a failure, a
//     crash: the session ends) puts every row back. A batch with any other outcome takes the slow
//     path (claimed_batch::settle_slowly): rolled back, its rows locked again, decided row by row.
//   * Wake-ups: LISTEN outbox_messages; the insert trigger's payload names the schema.
//
// Not thread-safe: one thread (the relay loop) uses a store. Every call may throw the pqxx
// exceptions of a failed or broken connection (pqxx::broken_connection, pqxx::sql_error, ...);
// after any exception other than from claimed_batch::reject/dead_letter the caller drops the
// store and connects a new one (its leases are gone with the old sessions).
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
#include <utility>
#include <vector>

#include "common/database.hpp"
#include "relay/config.hpp"
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

/// A claim transaction: the rows it locked and deleted in one statement (the fast path), or, after
/// settle_slowly(), locked again and not deleted, for a per-row outcome before commit().
/// Destroying it without commit() rolls back: every row stays, unlocked. Must not outlive its
/// store. After commit() or roll_back() only rows() may be used.
class claimed_batch {
 public:
  claimed_batch(claimed_batch&&) noexcept;
  claimed_batch& operator=(claimed_batch&& other) noexcept;  // rolls back the batch it held
  ~claimed_batch();

  /// In id order.
  const std::vector<outbox_row>& rows() const noexcept { return rows_; }

  /// The slow path, for a batch whose rows did not all reach the broker: rolls the claim back
  /// (every row returns) and, in a new transaction on the same session, locks the same rows
  /// again without deleting them, so that reject(), dead_letter() and remove() decide row by row
  /// before commit(). Rows another session removed meanwhile are logged and left out. Only while
  /// no other batch of this store is open (a batch claimed ahead must be rolled back first).
  /// No-op when already settling.
  void settle_slowly();
  /// After settle_slowly(): the broker refused `row`: attempts + 1, last_error,
  /// next_attempt_at = now + retry_in.
  void reject(const outbox_row& row, std::string_view error, std::chrono::milliseconds retry_in);
  /// After settle_slowly(): moves `row` to outbox_dead_letters with attempts + 1 and `error`.
  void dead_letter(const outbox_row& row, std::string_view error);
  /// After settle_slowly(): deletes the rows the broker acknowledged.
  void remove(std::span<const std::int64_t> ids);
  /// Commits: on the fast path every row is gone for good (call it only once the broker
  /// acknowledged every row). A pqxx::in_doubt_error means the outcome is unknown: never retry
  /// it; reconnect, and rows still present are published again (a duplicate, never a loss).
  void commit();
  /// Ends the transaction without changes: its rows stay, unlocked, for a later claim.
  void roll_back() noexcept;
  /// One round trip in the batch's transaction: throws pqxx::broken_connection (or another
  /// pqxx::failure) when its session is gone, i.e. when the relay may no longer own its rows'
  /// partitions. Called right before the rows are handed to the broker.
  void confirm_held();

 private:
  friend class store;
  claimed_batch(std::unique_ptr<pqxx::transaction_base> tx, std::vector<outbox_row> rows, bool* busy,
                pqxx::connection& connection);
  void close() noexcept;
  void require_settling(const char* what) const;  // std::logic_error on the fast path

  std::unique_ptr<pqxx::transaction_base> tx_;
  std::vector<outbox_row> rows_;
  bool* busy_;                    // the store's flag for the connection this batch occupies
  pqxx::connection* connection_;  // that connection
  bool deleted_ = true;           // the fast path: rows_ are deleted in tx_
};

/// How the store's sessions are set up.
struct session_settings {
  /// idle_in_transaction_session_timeout: a relay frozen with a batch open loses its sessions
  /// (row locks and leases) after it.
  std::chrono::milliseconds transaction_limit{std::chrono::seconds(75)};
  /// idle_session_timeout: a relay frozen between batches loses its sessions after it. The
  /// caller must call keep_alive() well within it.
  std::chrono::milliseconds idle_limit{std::chrono::seconds(15)};
  /// synchronous_commit of the sessions (see outbox_config::synchronous_commit).
  bool synchronous_commit = false;
  /// Later rows of a key with a dead letter are not claimable (outbox.dead_letter_blocks_key).
  bool dead_letter_blocks_key = true;
};

/// The settings `outbox` asks for (see outbox_config).
session_settings session_settings_for(const outbox_config& outbox);

class store {
 public:
  /// Connects both sessions, checks the schema, names the sessions, sets their timeouts, prepares
  /// the statements and LISTENs. Throws pqxx::broken_connection (unreachable) or store_error
  /// (schema not migrated).
  store(const common::database_config& config, const session_settings& settings);
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

  /// Keys held back by a dead letter (dead_letter_blocks_key): how many, and how long the oldest
  /// has been held (seconds since its dead letter was written). {0, nullopt} when none.
  std::pair<std::int64_t, std::optional<double>> held_keys();

  /// Tries to lease `candidates` in order until `limit` are leased (both sessions' locks, see
  /// above); returns those leased.
  std::vector<std::int16_t> try_lock_partitions(std::span<const std::int16_t> candidates, std::size_t limit);
  /// Releases leases this relay holds (both sessions' locks).
  void unlock_partitions(std::span<const std::int16_t> partitions);

  /// A trivial statement on each session that has no batch open, so that idle_session_timeout
  /// ends only a frozen relay's sessions. Throws like any statement when a session is gone.
  void keep_alive();

  /// Opens a transaction that locks and deletes (uncommitted) up to `limit` claimable rows of
  /// `owned`, in id order, leaving out rows of `excluded_topics`; rows locked by an open batch are
  /// skipped. At most two batches may be open at once:
  /// the first one opened on the main session, another one on the claims session. The calls above use both sessions and
  /// must not be made while a batch is open.
  claimed_batch claim(std::span<const std::int16_t> owned, std::size_t limit,
                      std::span<const std::string> excluded_topics = {});

  /// No batch is open on either session.
  bool idle() const noexcept { return !connection_busy_ && !claim_connection_busy_; }

 private:
  class listener;

  pqxx::connection& free_connection(bool*& busy);

  std::string connection_string_;
  session_settings settings_;
  std::unique_ptr<pqxx::connection> claim_connection_;
  bool connection_busy_ = false;
  bool claim_connection_busy_ = false;
  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<listener> listener_;  // declared after connection_: destroyed (UNLISTEN) first
  std::string schema_;
  std::string application_name_;
  int lock_class_ = 0;         // the main session's advisory lock class
  int claims_lock_class_ = 0;  // the claims session's
  bool notified_ = false;
};

}  // namespace relay
