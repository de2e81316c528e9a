#pragma once
// A real wallet-service process on its own test schema, started with conf/wallet.toml and
// WALLET_HTTP_PORT=0, WALLET_GRPC_PORT=0, plus the database reads the wallet suites check against.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <vector>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http_client.hpp"
#include "test_support.hpp"

namespace wallet_test {

using namespace std::chrono_literals;

/// The recipient of the suites' withdrawals (checksummed; nobody holds its key).
inline constexpr const char* address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// api.tokens digests: printf %s "s3cret-token" | sha256sum, and the same for "other-token".
inline constexpr const char* s3cret_digest = "a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";
inline constexpr const char* other_digest = "6c67163bbed989f232b31acc4f04df54b31285bfc01bd022c735b71e041a4754";

/// The JSON body of POST /v1/withdrawals on chain eth.
inline std::string withdrawal(std::int64_t user_id, const std::string& amount, const std::string& to = address) {
  return nlohmann::json{{"user_id", user_id}, {"to_address", to}, {"amount", amount}, {"chain", "eth"}}.dump();
}

/// error.code of an error answer ({"error": {"code": ..., "message": ...}}).
inline std::string code_of(const test_support::http_response& res) {
  INFO(res.body);
  return nlohmann::json::parse(res.body).at("error").at("code").get<std::string>();
}

class wallet_process {
 public:
  /// Starts wallet-service against `database_url` with `env` added, and waits for its port.
  wallet_process(const std::string& database_url, std::map<std::string, std::string> env = {},
                 std::string config = OUTBOX_SOURCE_DIR "/conf/wallet.toml") {
    env["DATABASE_URL"] = database_url;
    env.emplace("WALLET_HTTP_PORT", "0");
    env.emplace("WALLET_GRPC_PORT", "0");
    env.emplace("WALLET_LOG_LEVEL", "info");
    process_ = std::make_unique<test_support::child_process>(test_support::bin_path("wallet-service"),
                                                             std::vector<std::string>{"--config", config}, env,
                                                             test_support::new_log_path("wallet"));
    port_ = test_support::wait_for_http_port(*process_);
    if (env.at("WALLET_GRPC_PORT") == "0" && env["WALLET_GRPC_ENABLED"] != "false") {
      grpc_port_ = test_support::wait_for_port(*process_, "grpc");
    }
  }

  std::uint16_t port() const noexcept { return port_; }
  /// The gRPC port (0 when gRPC is off).
  std::uint16_t grpc_port() const noexcept { return grpc_port_; }
  std::string grpc_target() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  test_support::child_process& process() noexcept { return *process_; }
  test_support::http_client client() const { return test_support::http_client("127.0.0.1", port_); }

 private:
  std::unique_ptr<test_support::child_process> process_;
  std::uint16_t port_ = 0;
  std::uint16_t grpc_port_ = 0;
};

/// What a refused request must leave untouched.
struct db_state {
  std::string balances;  // "user:balance,..." in user order
  long withdrawals = 0;
  long outbox = 0;
  bool operator==(const db_state&) const = default;
};

inline db_state read_state(const test_support::test_schema& schema) {
  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  db_state state;
  state.balances = tx.exec1(
                         "SELECT coalesce(string_agg(user_id || ':' || balance, ',' ORDER BY user_id), '') "
                         "FROM accounts")[0]
                       .as<std::string>();
  state.withdrawals = tx.exec1("SELECT count(*) FROM withdrawals")[0].as<long>();
  state.outbox = tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<long>();
  return state;
}

inline std::string balance_of(const test_support::test_schema& schema, std::int64_t user_id) {
  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  return tx.exec_params1("SELECT balance::text FROM accounts WHERE user_id = $1", user_id)[0].as<std::string>();
}

/// Holds user `user_id`'s account row lock (SELECT ... FOR UPDATE in an open transaction), so that a
/// withdrawal of that user waits inside its transaction: a request or call kept in flight.
class account_lock {
 public:
  account_lock(const test_support::test_schema& schema, std::int64_t user_id)
      : schema_(schema), connection_(schema.connect()), tx_(connection_) {
    tx_.exec_params("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", user_id);
    pid_ = tx_.exec1("SELECT pg_backend_pid()")[0].as<int>();
  }

  /// True once a backend waits on the lock (false when none does within `timeout`).
  bool wait_for_waiter(std::chrono::milliseconds timeout = 30s) {
    auto observer = schema_.connect();
    return test_support::wait_until(
        [&] {
          pqxx::nontransaction tx(observer);
          return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid_)[0]
                     .as<long>() == 1;
        },
        timeout);
  }

  /// Ends the transaction: the waiting withdrawal goes on.
  void release() { tx_.commit(); }

 private:
  const test_support::test_schema& schema_;
  pqxx::connection connection_;
  pqxx::work tx_;
  int pid_ = 0;
};

// Catch prints db_state when a comparison fails.
inline std::ostream& operator<<(std::ostream& out, const db_state& s) {
  return out << "{balances: " << s.balances << ", withdrawals: " << s.withdrawals << ", outbox: " << s.outbox << "}";
}

}  // namespace wallet_test
