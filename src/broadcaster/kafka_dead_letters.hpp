#pragma once
// The Kafka source's dead-letter producer: a bad event goes to consumer.dlq_topic with its
// original key, value and headers plus `error`, `original-topic`, `original-partition` and
// `original-offset` (idempotent producer, acks=all). publish() returns only once the broker
// confirmed the delivery, so the source stores the event's offset only after that.
// Not thread-safe: used on the source's run() thread, which also serves its delivery reports.

#include <cstdint>
#include <map>
#include <string>

#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/settings.hpp"
#include "common/kafka.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"

namespace broadcaster {

/// librdkafka's error callback for the source's consumer and producer: a fatal error at error
/// level, "all brokers are down" through `warning` (once per 30 s), the per-connection chatter
/// at debug.
void log_kafka_client_error(common::repeated_warning& warning, int error_code, const char* reason);

class kafka_dead_letters {
 public:
  /// Creates the producer; connects lazily. `broker_warning` (the source's, shared with its
  /// consumer) reports the brokers down; `loop` names the health loop publish() beats.
  /// Throws common::config_error when librdkafka rejects a property.
  kafka_dead_letters(const settings& config, metrics& counters, health& status, common::process_signals& signals,
                     common::repeated_warning& broker_warning, const char* loop);
  kafka_dead_letters(const kafka_dead_letters&) = delete;
  kafka_dead_letters& operator=(const kafka_dead_letters&) = delete;

  /// Produces the dead letter of `m` and waits for its delivery report, retrying with the
  /// consumer's backoff. True once delivered; false when a stop request came first (a delivery
  /// already under way gets 10 s more): the caller then leaves the offset unstored.
  bool publish(const rd_kafka_message_s* m, const std::string& reason);
  /// Serves delivery reports without waiting.
  void poll();
  /// At shutdown: waits up to 5 s for what is still queued and logs what was not delivered.
  void flush();

 private:
  struct delivery {
    enum class state { pending, delivered, failed } what = state::pending;
    std::string error;
  };

  static void on_delivery(rd_kafka_s*, const rd_kafka_message_s* m, void* opaque);
  static void on_error(rd_kafka_s*, int error_code, const char* reason, void* opaque);

  const settings& config_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  common::repeated_warning& broker_warning_;
  const char* loop_;
  common::kafka::handle producer_;
  std::map<std::uintptr_t, delivery> deliveries_;  // touched only on the run() thread (in rd_kafka_poll)
  std::uintptr_t next_token_ = 0;
};

}  // namespace broadcaster
