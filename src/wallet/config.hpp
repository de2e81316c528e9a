#pragma once
// wallet-service configuration: one plain struct filled by parse_config() from conf/wallet.toml
// and WALLET_* environment overrides (see README.md "wallet-service" for every key).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "chain/uint256.hpp"
#include "common/config.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"

namespace wallet {

/// What a withdrawal on one chain may look like ([chains.<name>]). Addresses are EVM addresses
/// (0x + 40 hex digits, EIP-55 checked when mixed-case) on every chain we support.
struct chain_rules {
  std::string name;
  /// Decimals of the chain's amounts, 0..18 (the scale of the numeric(78, 18) columns).
  unsigned decimals = 18;
  /// The largest withdrawal in base units, inclusive: [chains.<name>] max_amount when set,
  /// otherwise the largest amount the numeric(78, 18) columns hold.
  chain::uint256 max_amount;
};

using chain_map = std::map<std::string, chain_rules, std::less<>>;

/// Rules for `name` with `decimals` and an optional decimal maximum ("1000"); throws
/// common::config_error naming chains.<name>.* when they are out of range.
chain_rules make_chain_rules(std::string name, unsigned decimals, const std::optional<std::string>& max_amount);

/// The gRPC listener ([grpc]).
struct grpc_config {
  bool enabled = true;
  std::string listen = "127.0.0.1";
  /// 0 picks a free port (logged as "listening on grpc://<addr>:<port>").
  std::uint16_t port = 9090;
  /// Handler threads (grpc.threads; default database.pool_size): each runs a call's database work
  /// inline, as the HTTP server's threads do.
  std::size_t threads = 16;
  /// Largest request message; larger ones are refused with RESOURCE_EXHAUSTED.
  std::size_t max_receive_bytes = 16 * 1024;
};

struct service_config {
  std::string log_level = "info";
  /// listen, port (WALLET_HTTP_PORT; 0 = ephemeral), threads (default: pool_size), timeouts.
  common::http::server_config http;
  grpc_config grpc;
  /// How long SIGTERM waits for in-flight requests (HTTP and gRPC) before cutting connections.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(30)};

  common::database_config database;
  std::size_t pool_size = 16;
  std::chrono::milliseconds acquire_timeout{std::chrono::seconds(5)};
  /// Server-side statement_timeout of every pooled session: the deadline of each SQL statement.
  std::chrono::milliseconds statement_timeout{std::chrono::seconds(5)};
  /// Attempts of one withdrawal transaction on serialization failures, deadlocks and broken
  /// connections (never after an in-doubt commit).
  int max_attempts = 3;

  /// POST /v1/accounts/{user_id}/deposits answers only when true (demos and tests).
  bool enable_deposits = false;
  /// api.require_idempotency_key: withdrawals and deposits without a key are refused (400
  /// missing_idempotency_key / INVALID_ARGUMENT), so no retry can move money twice.
  bool require_idempotency_key = false;
  /// auth.tokens_file: the accepted bearer tokens (see auth.hpp). When unset, the systemd
  /// credential "api-tokens" is used if present; with neither, the service refuses to start
  /// unless auth.disabled is true.
  std::optional<std::filesystem::path> tokens_file;
  bool auth_disabled = false;

  chain_map chains;
};

/// Reads every key of the wallet's TOML (see conf/wallet.toml) and rejects keys it does not know.
/// Throws common::config_error naming the key.
service_config parse_config(common::config_reader& reader);

}  // namespace wallet
