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
  /// Refused for good for this message (too large, invalid or forbidden topic): counts as an
  /// attempt; dead-lettered after max_attempts.
  rejected,
  /// Not delivered for a reason that is not the message's fault (broker down, timed out): the row
  /// stays as it is and the relay backs off.
  failed,
  /// Not sent: an earlier row of the same key failed in this batch, and sending this one would
  /// overtake it.
  held_back,
};

struct delivery_result {
  delivery_status status = delivery_status::held_back;
  std::string error;   // human-readable, stored as last_error
  std::string reason;  // short, bounded label for relay_publish_errors_total{reason}
  std::chrono::steady_clock::time_point at{};  // when the outcome became known
};

}  // namespace relay
