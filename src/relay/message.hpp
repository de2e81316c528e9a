#pragma once
// What the relay moves: an outbox row as claimed from the database, and what became of it at the
// broker. Plain values, shared by the store (SQL) and the publishers (Kafka, Redis Streams).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace relay {

struct outbox_row {
  std::int64_t id = 0;
  std::string topic;
  std::optional<std::string> key;  // nullopt: no key (no order among such rows)
  std::string payload;             // raw bytes
  std::string headers;             // a JSON object, as PostgreSQL prints jsonb
  int attempts = 0;                // broker rejections so far
  double age_seconds = 0;          // how long the row had waited when it was claimed
};

enum class delivery_status {
  /// The broker acknowledged it (Kafka: delivery report PERSISTED; Redis: XADD returned an id).
  persisted,
  /// Refused for good for this message itself (too large, invalid record, invalid topic name):
  /// counts as an attempt; dead-lettered after max_attempts.
  rejected,
  /// Not delivered because the broker could not be reached in time (all brokers down, timed out):
  /// the row stays as it is; the relay steps aside and backs off.
  failed,
  /// Refused by the broker for every message of its topic, or of the cluster, for now (unknown
  /// topic or partition, topic or cluster authorization, not enough replicas, no leader): the row
  /// stays as it is (no attempt counted); the relay reports the topic blocked and backs off.
  blocked,
  /// Not sent: an earlier row of the same key failed in this batch, and sending this one would
  /// overtake it.
  held_back,
};

struct delivery_result {
  delivery_status status = delivery_status::held_back;
  std::string error;                           // human-readable, stored as last_error
  std::string reason;                          // short, bounded label for relay_publish_errors_total{reason}
  std::chrono::steady_clock::time_point at{};  // when the outcome became known
};

}  // namespace relay
