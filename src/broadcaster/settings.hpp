#pragma once
// broadcaster-worker configuration: conf/broadcaster.toml, environment prefix BROADCASTER_.
// Plain structs with defaults, filled by parse_settings(); the signing key is read separately
// (load_signing_key) because it is a secret and never comes from the TOML file.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "chain/signer.hpp"
#include "chain/uint256.hpp"
#include "common/config.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"
#include "common/kafka.hpp"

namespace broadcaster {

enum class source_mode { events, db_poll };
enum class transaction_type { eip1559, legacy };

struct consumer_settings {
  std::string topic = "wallet_events_withdrawal";
  std::string group = "broadcaster-worker";
  std::string dlq_topic = "wallet_events_withdrawal.dlq";
  /// Backoff between retries of transient node and database errors (capped, jittered).
  std::chrono::milliseconds retry_backoff{250};
  std::chrono::milliseconds retry_backoff_max{std::chrono::seconds(10)};
};

struct redis_settings {
  std::string url;
  /// Consumer name in the group; empty means "<hostname>-<pid>".
  std::string consumer;
  /// Pending entries idle this long belong to a dead consumer and are claimed (XAUTOCLAIM).
  std::chrono::milliseconds claim_idle{std::chrono::seconds(30)};
  /// XREADGROUP BLOCK time.
  std::chrono::milliseconds block{std::chrono::seconds(1)};
};

struct chain_settings {
  std::string rpc_url = "http://127.0.0.1:58545";
  /// 0: ask the node (eth_chainId) at start.
  std::uint64_t chain_id = 0;
  /// The `chain` value of the withdrawals this worker pays ("eth").
  std::string name = "eth";
  transaction_type tx_type = transaction_type::eip1559;
  std::uint64_t gas_limit = 21000;
  /// nullopt = "auto" (from the node at signing time). For legacy transactions max_fee_per_gas is
  /// the gas price and max_priority_fee_per_gas is not used.
  std::optional<chain::uint256> max_fee_per_gas;
  std::optional<chain::uint256> max_priority_fee_per_gas;
  std::chrono::milliseconds rpc_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds confirm_poll_interval{std::chrono::seconds(1)};
  /// A version neither mined nor replaced this long after its signing is replaced by one with
  /// higher fees (or, at the cap, re-sent as it is).
  std::chrono::milliseconds rebroadcast_after{std::chrono::seconds(30)};
  /// Blocks a receipt must be deep (1 = in the latest block) before a withdrawal is confirmed, a
  /// revert or a cancel refunded, or a nonce taken by another transaction believed.
  std::uint64_t confirmations = 12;
  /// No fee ever above this, "auto" and fee bumps included (wei).
  chain::uint256 max_fee_per_gas_cap{1'000'000'000'000ULL};  // 1000 gwei
};

struct reconcile_settings {
  /// A pending withdrawal this old (its event lost, dead-lettered or late) is processed from the
  /// database by the tracker.
  std::chrono::milliseconds pending_after{std::chrono::minutes(5)};
};

struct settings {
  std::string log_level = "info";
  common::database_config database;
  source_mode source = source_mode::events;
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
  common::mq_type mq = common::mq_type::kafka;
  common::kafka::kafka_config kafka;
  consumer_settings consumer;
  redis_settings redis;
  chain_settings chain;
  reconcile_settings reconcile;
  common::http::server_config http;  // http.port 9102 by default; one thread
};

/// Reads every section (see conf/broadcaster.toml) and rejects keys it does not know.
/// Throws common::config_error naming the key. The Kafka SASL password comes from
/// BROADCASTER_KAFKA_SASL_PASSWORD, BROADCASTER_KAFKA_SASL_PASSWORD_FILE or the credential
/// kafka-sasl-password (looked up in `env`), never from [kafka.properties].
settings parse_settings(common::config_reader& reader, const common::env_lookup& env = common::process_environment());

/// The hot wallet's key from BROADCASTER_SIGNING_KEY (64 hex digits), BROADCASTER_SIGNING_KEY_FILE,
/// or the systemd credential "signing-key". Throws common::config_error naming
/// BROADCASTER_SIGNING_KEY when none is set or the value is not a valid key; the message never
/// contains the value.
chain::private_key load_signing_key(const common::env_lookup& env = common::process_environment());

/// Wipes BROADCASTER_SIGNING_KEY (and _FILE) from the process environment once the key was read:
/// the value is overwritten in place (it is also what /proc/<pid>/environ shows) and unset.
/// Not thread-safe: call before any thread starts.
void forget_signing_key_environment();

/// The default Redis consumer name: "<hostname>-<pid>".
std::string default_consumer_name();

}  // namespace broadcaster
