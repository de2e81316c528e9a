#pragma once
// outbox-relay's configuration: one TOML file (conf/relay.toml) plus RELAY_* environment overrides
// and the shared aliases (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, REDIS_MQ_TYPE).
// Parsing validates everything a running relay would trip over later (ranges, librdkafka property
// names and values, the Redis URL), so `outbox-relay --check-config` catches it up front.
// Errors are common::config_error naming the key; the daemon exits with code 2 on them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "common/config.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"
#include "common/kafka.hpp"

namespace relay {

struct outbox_config {
  /// Rows claimed (and locked) per transaction.
  std::size_t batch_size = 1000;
  /// Fallback wake-up when no NOTIFY arrives.
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
  /// Deadline for every delivery report of a batch; librdkafka's message.timeout.ms sits below it.
  std::chrono::milliseconds delivery_timeout{std::chrono::seconds(30)};
  /// Broker rejections before a row moves to outbox_dead_letters.
  int max_attempts = 5;
  /// Per-row delay after a rejection: retry_backoff * 2^(attempts-1), capped, jittered.
  std::chrono::milliseconds retry_backoff{std::chrono::seconds(1)};
  std::chrono::milliseconds retry_backoff_max{std::chrono::seconds(60)};
  /// Relay-wide delay between broker probes while the broker is unreachable (also used for the database).
  std::chrono::milliseconds broker_backoff{std::chrono::milliseconds(250)};
  std::chrono::milliseconds broker_backoff_max{std::chrono::seconds(10)};
  /// How long a stop may take to finish the batch in flight and flush the producer.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(20)};
  /// How often partition leases are rebalanced among the live relays.
  std::chrono::milliseconds lease_refresh{std::chrono::seconds(2)};
  /// The freeze bound: a relay that stops talking to the database (SIGSTOP, a VM pause, a hung
  /// host) loses its partition leases after lease_timeout when frozen between batches, and after
  /// 2 x delivery_timeout + lease_timeout when frozen with a batch open (the server ends its sessions:
  /// idle_session_timeout / idle_in_transaction_session_timeout). A working relay touches its
  /// sessions every lease_timeout / 5.
  std::chrono::milliseconds lease_timeout{std::chrono::seconds(15)};
  /// A dead-lettered row holds back the later rows of its key until it is requeued (it then goes
  /// first) or discarded (walletctl dead-letters requeue / discard). false: later rows flow on
  /// (the key's order ends at the dead letter).
  bool dead_letter_blocks_key = true;
  /// synchronous_commit of the relay's own sessions. Off: a commit does not wait for the WAL
  /// flush. Its commits only delete rows the broker already acknowledged (or count a rejection),
  /// so a database crash can undo the last ~0.6 s of them and those rows are published again
  /// (duplicates, dropped by outbox-id downstream); no row is lost, because the writers' own
  /// commits keep their setting.
  bool synchronous_commit = false;
};

struct redis_config {
  std::string url;
  /// XADD ... MAXLEN ~ n when > 0; 0 keeps every entry.
  std::int64_t stream_max_len = 0;
};

struct relay_config {
  std::string log_level = "info";
  common::database_config database;
  common::mq_type mq = common::mq_type::kafka;
  common::kafka::kafka_config kafka;
  redis_config redis;
  outbox_config outbox;
  common::http::server_config http;  // http.port 9101 by default; one thread
};

/// Reads every key, validates, and rejects unknown keys. Throws common::config_error.
relay_config parse_config(common::config_reader& reader);

/// parse_config() of a file read with the RELAY_ prefix and `env`. Throws common::config_error.
relay_config load_config(const std::filesystem::path& path, common::env_lookup env = common::process_environment());

/// librdkafka properties of the relay's producer: its defaults (idempotence, acks=all, lz4, a
/// small linger, a bounded queue, message.timeout.ms below delivery_timeout), then
/// [kafka.properties], which win. Kept as a map so --check-config can validate it.
std::map<std::string, std::string> producer_defaults(const relay_config& config);

/// How long the relay's sessions may stay idle in a transaction: 2 x delivery_timeout + lease_timeout.
std::chrono::milliseconds transaction_limit(const outbox_config& outbox);

/// message.timeout.ms the relay sets: below delivery_timeout by a margin, so a delivery report
/// (success or timeout) arrives for every message before the batch's deadline.
std::chrono::milliseconds message_timeout(std::chrono::milliseconds delivery_timeout);

}  // namespace relay
