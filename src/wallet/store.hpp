#pragma once
// The wallet's SQL: one transaction per withdrawal (debit + withdrawal row + outbox row), reads
// for the GET routes, deposits, and the health probe. Every statement takes its values as
// parameters of prepared statements; no input is ever spliced into SQL text.
//
// Thread-safety: store and health_probe are safe to call from many threads; each call borrows
// a pooled connection (store) or serializes on its own connection (health_probe).
// Blocking: every call waits at most the pool's acquire_timeout for a connection, then at most
// the sessions' statement_timeout per statement.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include <pqxx/connection>

#include "common/database.hpp"
#include "wallet/request.hpp"

namespace wallet {

/// The database could not be reached or did not answer in time; nothing was written, except
/// when in_doubt(): the commit was sent and its outcome is unknown. (common::perform()'s failure.)
using database_unavailable = common::database_failure;

enum class create_outcome {
  created,               // debited, withdrawal pending, outbox row written, committed
  replayed,              // the Idempotency-Key was used before with the same request: nothing written
  unknown_user,          // no account: nothing written
  insufficient_balance,  // balance < amount: nothing written
  key_reused,            // the Idempotency-Key was used before with another request: nothing written
};

struct create_result {
  create_outcome outcome = create_outcome::created;
  std::int64_t withdrawal_id = 0;  // created and replayed; key_reused: the other withdrawal (0 if unknown)
  std::string created_at;          // created and replayed: RFC 3339 UTC with microseconds
};

/// What a money-moving call carries besides its body. Keys are per client: the same key of two
/// clients names two requests.
struct request_origin {
  std::optional<std::string> idempotency_key;
  /// The token's name (created_by); nullopt without authentication.
  std::optional<std::string> client;
};

struct withdrawal_record {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string chain;
  std::string to_address;
  std::string amount;                  // canonical decimal
  std::string status;                  // pending, signed, broadcast, confirmed, failed
  std::optional<std::string> tx_hash;  // once broadcast
  std::optional<std::string> failure_reason;
  // RFC 3339 UTC with microseconds ("2024-05-01T12:00:00.123456Z").
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> signed_at;
  std::optional<std::string> broadcast_at;
  std::optional<std::string> confirmed_at;
  std::optional<std::string> failed_at;
};

struct account_record {
  std::int64_t user_id = 0;
  std::string balance;  // canonical decimal
  std::string created_at;
  std::string updated_at;
};

enum class deposit_outcome {
  credited,      // committed
  replayed,      // the client's Idempotency-Key was used before with the same deposit: nothing written
  key_reused,    // ... with another deposit: nothing written
  out_of_range,  // the balance would exceed numeric(78, 18): nothing written
};

struct deposit_result {
  deposit_outcome outcome = deposit_outcome::credited;
  std::string balance;  // credited and replayed: canonical decimal right after the deposit
};

class store {
 public:
  /// `pool` must have been created with store::session_setup(); it must outlive the store.
  store(common::connection_pool& pool, int max_attempts);

  /// The connection_pool hook: session settings (statement_timeout, idle-in-transaction timeout,
  /// UTC) and the prepared statements.
  static common::connection_pool::connection_setup session_setup(std::chrono::milliseconds statement_timeout);

  /// The withdrawal transaction. Retries serialization failures, deadlocks and broken connections
  /// up to max_attempts; throws database_unavailable when the database cannot do it (in_doubt()
  /// when a commit's outcome is unknown). Other database errors propagate as pqxx exceptions.
  create_result create_withdrawal(const withdrawal_request& request, const request_origin& origin,
                                  const std::optional<std::string>& traceparent);

  /// Throws database_unavailable as above.
  std::optional<withdrawal_record> find_withdrawal(std::int64_t id);
  std::optional<account_record> find_account(std::int64_t user_id);
  /// Credits `amount` (canonical decimal), creating the account on its first deposit, and records
  /// the deposit, in one transaction with the same retries as create_withdrawal (an in-doubt
  /// commit is never retried: database_unavailable with in_doubt()).
  deposit_result deposit(std::int64_t user_id, const std::string& amount, const request_origin& origin);

 private:
  template <class F>
  auto with_retries(const char* what, F&& work);

  common::connection_pool& pool_;
  const common::retry_policy retry_policy_;
};

/// /healthz's "database reachable": SELECT 1 on a connection of its own, so a pool busy with
/// withdrawals does not make the service look down. Reconnects when the connection broke.
class health_probe {
 public:
  health_probe(common::database_config config, std::chrono::milliseconds statement_timeout);
  ~health_probe();
  /// Empty when the database answered; the reason otherwise. Blocks up to the connect timeout
  /// plus the statement timeout.
  std::string problem();

 private:
  const std::string connection_string_;
  const std::chrono::milliseconds statement_timeout_;
  std::mutex mutex_;
  std::unique_ptr<pqxx::connection> connection_;
};

}  // namespace wallet
