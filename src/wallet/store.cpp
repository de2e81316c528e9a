#include "wallet/store.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "events/withdrawal_created.hpp"

namespace wallet {

namespace {

// RFC 3339 in UTC with microseconds, whatever the session's TimeZone.
#define WALLET_RFC3339(column) "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

// The idempotency key's unique index is the arbiter: a concurrent request with the same key
// waits here for the first one's commit, then finds the conflict, so the debit below never runs
// twice. Inserting before debiting also means an unknown user fails on the foreign key.
// The only unique index a new row can hit is the per-client key's (the id is an identity, tx_hash
// is NULL), so DO NOTHING without a target means "this client used this key before".
constexpr const char* insert_withdrawal_sql =
    "INSERT INTO withdrawals (user_id, chain, to_address, amount, idempotency_key, request_digest, created_by) "
    "VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'), $7) "
    "ON CONFLICT DO NOTHING "
    "RETURNING id, " WALLET_RFC3339("created_at");

// The row lock of this UPDATE serializes withdrawals of one account; the condition makes an
// overdraft impossible whatever the interleaving (and the CHECK (balance >= 0) backs it up).
constexpr const char* debit_sql =
    "UPDATE accounts SET balance = balance - $2, updated_at = now() "
    "WHERE user_id = $1 AND balance >= $2 RETURNING balance";

// No NOTIFY here: the AFTER INSERT trigger on outbox_messages runs pg_notify('outbox_messages',
// <schema>) inside this same transaction, so the relay wakes exactly when the row commits.
constexpr const char* insert_outbox_sql =
    "INSERT INTO outbox_messages (topic, key, payload, headers) "
    "VALUES ($1, $2, convert_to($3, 'UTF8'), $4::jsonb || jsonb_build_object('event-id', gen_random_uuid()::text))";

constexpr const char* find_by_key_sql = "SELECT id, encode(request_digest, 'hex'), " WALLET_RFC3339(
    "created_at") " FROM withdrawals WHERE coalesce(created_by, '') = coalesce($2, '') AND idempotency_key = $1";

constexpr const char* find_withdrawal_sql =
    "SELECT id, user_id, chain, to_address, amount::text, status, tx_hash, failure_reason, broadcast_at IS NOT NULL, "
    WALLET_RFC3339("created_at") ", " WALLET_RFC3339("updated_at") ", " WALLET_RFC3339("signed_at") ", "
    WALLET_RFC3339("broadcast_at") ", " WALLET_RFC3339("confirmed_at") ", " WALLET_RFC3339("failed_at")
    " FROM withdrawals WHERE id = $1";

constexpr const char* find_account_sql = "SELECT user_id, balance::text, " WALLET_RFC3339(
    "created_at") ", " WALLET_RFC3339("updated_at") " FROM accounts WHERE user_id = $1";

// As for withdrawals: the per-client key's unique index arbitrates concurrent retries.
constexpr const char* insert_deposit_sql =
    "INSERT INTO deposits (user_id, amount, idempotency_key, request_digest, created_by) "
    "VALUES ($1, $2, $3, decode($4, 'hex'), $5) ON CONFLICT DO NOTHING RETURNING id";

constexpr const char* credit_sql =
    "WITH credited AS ("
    "  INSERT INTO accounts (user_id, balance) VALUES ($1, $2) "
    "  ON CONFLICT (user_id) DO UPDATE SET balance = accounts.balance + EXCLUDED.balance, updated_at = now() "
    "  RETURNING balance) "
    "UPDATE deposits SET balance_after = (SELECT balance FROM credited) WHERE id = $3 RETURNING balance_after::text";

constexpr const char* find_deposit_by_key_sql =
    "SELECT encode(request_digest, 'hex'), balance_after::text FROM deposits "
    "WHERE coalesce(created_by, '') = coalesce($2, '') AND idempotency_key = $1";

#undef WALLET_RFC3339

template <class T>
std::optional<T> optional_field(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return field.as<T>();
}

std::string session_settings(std::chrono::milliseconds statement_timeout) {
  // Integers from our own configuration, not input: formatting them into SQL is safe.
  return fmt::format(
      "SET statement_timeout = {0}; SET lock_timeout = {0}; "
      "SET idle_in_transaction_session_timeout = {1}; SET TIME ZONE 'UTC'",
      statement_timeout.count(), std::max<std::int64_t>(statement_timeout.count() * 2, 1000));
}

}  // namespace

store::store(common::connection_pool& pool, int max_attempts)
    : pool_(pool),
      retry_policy_{static_cast<unsigned>(max_attempts), std::chrono::milliseconds(5), std::chrono::milliseconds(100)} {
}

common::connection_pool::connection_setup store::session_setup(std::chrono::milliseconds statement_timeout) {
  return [statement_timeout](pqxx::connection& connection) {
    {
      pqxx::nontransaction tx(connection);
      tx.exec(session_settings(statement_timeout));
    }
    connection.prepare("wallet_insert_withdrawal", insert_withdrawal_sql);
    connection.prepare("wallet_debit", debit_sql);
    connection.prepare("wallet_insert_outbox", insert_outbox_sql);
    connection.prepare("wallet_find_by_key", find_by_key_sql);
    connection.prepare("wallet_find_withdrawal", find_withdrawal_sql);
    connection.prepare("wallet_find_account", find_account_sql);
    connection.prepare("wallet_insert_deposit", insert_deposit_sql);
    connection.prepare("wallet_credit", credit_sql);
    connection.prepare("wallet_find_deposit_by_key", find_deposit_by_key_sql);
  };
}

template <class F>
auto store::with_retries(const char* what, F&& work) {
  return common::perform(pool_, what, retry_policy_, std::forward<F>(work));
}

create_result store::create_withdrawal(const withdrawal_request& request, const request_origin& origin,
                                       const std::optional<std::string>& traceparent) {
  const auto& key = origin.idempotency_key;
  const std::optional<std::string> digest = key ? std::optional<std::string>(request_digest(request)) : std::nullopt;
  return with_retries("create withdrawal", [&](pqxx::connection& connection) -> create_result {
    {
      pqxx::work tx(connection);
      std::optional<pqxx::result> inserted;
      try {
        inserted = tx.exec_prepared("wallet_insert_withdrawal", request.user_id, request.chain, request.to_address,
                                    request.amount, key, digest, origin.client);
      } catch (const pqxx::foreign_key_violation&) {
        return {create_outcome::unknown_user, 0, {}};
      }
      if (!inserted->empty()) {
        const auto withdrawal_id = (*inserted)[0][0].as<std::int64_t>();
        auto created_at = (*inserted)[0][1].as<std::string>();
        if (tx.exec_prepared("wallet_debit", request.user_id, request.amount).empty()) {
          return {create_outcome::insufficient_balance, 0, {}};  // the destructor rolls the insert back
        }
        // The seed's WithdrawalCreatedEvent, field for field (the contract: events/withdrawal_created.hpp).
        const events::withdrawal_created event{withdrawal_id, request.user_id, request.to_address, request.amount,
                                               request.chain};
        tx.exec_prepared("wallet_insert_outbox", std::string(events::withdrawal_topic), events::event_key(event),
                         events::to_payload(event), events::event_headers_json(created_at, traceparent));
        tx.commit();
        return {create_outcome::created, withdrawal_id, std::move(created_at)};
      }
    }
    // The client's key exists (committed by an earlier request): answer as that request was answered.
    pqxx::nontransaction read(connection);
    const auto existing = read.exec_prepared("wallet_find_by_key", *key, origin.client);
    if (existing.empty()) {
      // Only a deleted withdrawal could do this; treat it as a conflict rather than debit again.
      return {create_outcome::key_reused, 0, {}};
    }
    const auto id = existing[0][0].as<std::int64_t>();
    if (!existing[0][1].is_null() && existing[0][1].as<std::string>() == *digest) {
      return {create_outcome::replayed, id, existing[0][2].as<std::string>()};
    }
    return {create_outcome::key_reused, id, {}};
  });
}

std::optional<withdrawal_record> store::find_withdrawal(std::int64_t id) {
  return with_retries("find withdrawal", [&](pqxx::connection& connection) -> std::optional<withdrawal_record> {
    pqxx::nontransaction tx(connection);
    const auto rows = tx.exec_prepared("wallet_find_withdrawal", id);
    if (rows.empty()) return std::nullopt;
    const auto& row = rows[0];
    withdrawal_record record;
    record.id = row[0].as<std::int64_t>();
    record.user_id = row[1].as<std::int64_t>();
    record.chain = row[2].as<std::string>();
    record.to_address = row[3].as<std::string>();
    record.amount = canonical_decimal(row[4].as<std::string>());
    record.status = row[5].as<std::string>();
    // tx_hash is set when the transaction is signed, but only means something once it was sent.
    if (row[8].as<bool>()) record.tx_hash = optional_field<std::string>(row[6]);
    record.failure_reason = optional_field<std::string>(row[7]);
    record.created_at = row[9].as<std::string>();
    record.updated_at = row[10].as<std::string>();
    record.signed_at = optional_field<std::string>(row[11]);
    record.broadcast_at = optional_field<std::string>(row[12]);
    record.confirmed_at = optional_field<std::string>(row[13]);
    record.failed_at = optional_field<std::string>(row[14]);
    return record;
  });
}

std::optional<account_record> store::find_account(std::int64_t user_id) {
  return with_retries("find account", [&](pqxx::connection& connection) -> std::optional<account_record> {
    pqxx::nontransaction tx(connection);
    const auto rows = tx.exec_prepared("wallet_find_account", user_id);
    if (rows.empty()) return std::nullopt;
    return account_record{rows[0][0].as<std::int64_t>(), canonical_decimal(rows[0][1].as<std::string>()),
                          rows[0][2].as<std::string>(), rows[0][3].as<std::string>()};
  });
}

deposit_result store::deposit(std::int64_t user_id, const std::string& amount, const request_origin& origin) {
  const auto& key = origin.idempotency_key;
  const std::optional<std::string> digest = key ? std::optional(deposit_digest(user_id, amount)) : std::nullopt;
  // One transaction, committed explicitly: a connection that breaks before COMMIT was sent rolled
  // back (safe to retry); one that breaks during COMMIT is in doubt and never retried.
  return with_retries("deposit", [&](pqxx::connection& connection) -> deposit_result {
    {
      pqxx::work tx(connection);
      const auto inserted = tx.exec_prepared("wallet_insert_deposit", user_id, amount, key, digest, origin.client);
      if (!inserted.empty()) {
        pqxx::result credited;
        try {
          credited = tx.exec_prepared("wallet_credit", user_id, amount, inserted[0][0].as<std::int64_t>());
        } catch (const pqxx::data_exception& e) {
          if (e.sqlstate() == "22003") return {deposit_outcome::out_of_range, {}};  // numeric_value_out_of_range
          throw;
        }
        tx.commit();
        return {deposit_outcome::credited, canonical_decimal(credited[0][0].as<std::string>())};
      }
    }
    pqxx::nontransaction read(connection);
    const auto existing = read.exec_prepared("wallet_find_deposit_by_key", *key, origin.client);
    if (existing.empty() || existing[0][0].is_null() || existing[0][0].as<std::string>() != *digest ||
        existing[0][1].is_null()) {
      return {deposit_outcome::key_reused, {}};
    }
    return {deposit_outcome::replayed, canonical_decimal(existing[0][1].as<std::string>())};
  });
}

health_probe::health_probe(common::database_config config, std::chrono::milliseconds statement_timeout)
    : connection_string_(common::connection_string(config)), statement_timeout_(statement_timeout) {}

health_probe::~health_probe() = default;

std::string health_probe::problem() {
  std::lock_guard lock(mutex_);
  // A kept connection may have died since the last probe (server restart): then one fresh try.
  for (int attempt = connection_ ? 0 : 1;; ++attempt) {
    try {
      if (!connection_ || !connection_->is_open()) {
        connection_.reset();
        auto connection = std::make_unique<pqxx::connection>(connection_string_);
        pqxx::nontransaction(*connection).exec(session_settings(statement_timeout_));
        connection_ = std::move(connection);
      }
      pqxx::nontransaction tx(*connection_);
      tx.exec("SELECT 1");
      return {};
    } catch (const std::exception& e) {
      connection_.reset();
      if (attempt == 0) continue;
      std::string reason = e.what();
      while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
      return "database unreachable: " + reason;
    }
  }
}

}  // namespace wallet
