#pragma once
// The relay's Prometheus metrics. Thread-safe (prometheus-cpp metrics are atomic): the relay loop
// updates them, the HTTP thread renders them.
//
//   outbox_pending_rows                 gauge      rows in outbox_messages (exact to 100,000, then estimated)
//   outbox_oldest_pending_age_seconds   gauge      age of the oldest row (0 when empty)
//   relay_published_total{topic}        counter    rows the broker acknowledged
//   relay_publish_errors_total{reason}  counter    rows not acknowledged, by reason (e.g. msg_size_too_large)
//   relay_dead_lettered_total           counter    rows moved to outbox_dead_letters
//   relay_commit_to_ack_seconds         histogram  from the row's insert to the broker's acknowledgement
//   relay_batch_size                    histogram  rows per claimed batch
//   relay_partitions_owned              gauge      partition leases held (of 256)
//   relay_database_up, relay_broker_up  gauge      1 when reachable
//   relay_publish_blocked{topic,reason} gauge     1 while the broker refuses the whole topic for that reason
//   relay_held_keys                     gauge      keys held back by a dead letter (dead_letter_blocks_key)
//   relay_oldest_held_key_age_seconds   gauge      how long the oldest held key has been held (0 when none)

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace relay {

class relay_metrics {
 public:
  relay_metrics();

  const std::shared_ptr<prometheus::Registry>& registry() const noexcept { return registry_; }

  void published(const std::string& topic, double commit_to_ack_seconds);
  void publish_error(const std::string& reason);
  void dead_lettered() { dead_lettered_.Increment(); }
  void batch(std::size_t rows) { batch_size_.Observe(static_cast<double>(rows)); }
  void partitions_owned(std::size_t n) { partitions_owned_.Set(static_cast<double>(n)); }
  void database_up(bool up) { database_up_.Set(up ? 1 : 0); }
  void broker_up(bool up) { broker_up_.Set(up ? 1 : 0); }
  void pending_rows(std::int64_t n) { pending_rows_.Set(static_cast<double>(n)); }
  void oldest_age(double seconds) { oldest_age_.Set(seconds); }
  void publish_blocked(const std::string& topic, const std::string& reason, bool blocked);
  void held_keys(std::int64_t keys, double oldest_age_seconds) {
    held_keys_.Set(static_cast<double>(keys));
    oldest_held_key_age_.Set(oldest_age_seconds);
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& published_;
  prometheus::Family<prometheus::Counter>& publish_errors_;
  prometheus::Counter& dead_lettered_;
  prometheus::Histogram& commit_to_ack_;
  prometheus::Histogram& batch_size_;
  prometheus::Gauge& partitions_owned_;
  prometheus::Gauge& database_up_;
  prometheus::Gauge& broker_up_;
  prometheus::Gauge& pending_rows_;
  prometheus::Gauge& oldest_age_;
  prometheus::Family<prometheus::Gauge>& publish_blocked_;
  prometheus::Gauge& held_keys_;
  prometheus::Gauge& oldest_held_key_age_;
};

}  // namespace relay
