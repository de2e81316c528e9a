#pragma once
// The broadcaster's Prometheus metrics. Construct once per registry; every member is thread-safe
// (prometheus-cpp counters, gauges and histograms are atomic; Family::Add takes a lock).

#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace broadcaster {

/// Labels of broadcaster_failures_total{reason}.
namespace failure_reason {
inline constexpr std::string_view dead_letter = "dead_letter";            // bad event, sent to the DLQ
inline constexpr std::string_view rejected = "rejected";                  // the node refused the transaction for good
inline constexpr std::string_view reverted = "reverted";                  // mined with status 0
inline constexpr std::string_view node_unavailable = "node_unavailable";  // transient RPC failure (retried)
inline constexpr std::string_view database_unavailable = "database_unavailable";  // transient DB failure (retried)
inline constexpr std::string_view internal = "internal";                  // unexpected error
}  // namespace failure_reason

struct metrics {
  explicit metrics(prometheus::Registry& registry);

  prometheus::Counter& events_consumed;
  prometheus::Counter& duplicates_skipped;
  prometheus::Counter& broadcasts;
  prometheus::Counter& rebroadcasts;
  prometheus::Counter& confirmed;
  prometheus::Counter& dead_letters;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Histogram& event_to_broadcast_seconds;
  prometheus::Gauge& consumer_lag;

  void failure(std::string_view reason) { failures.Add({{"reason", std::string(reason)}}).Increment(); }
};

}  // namespace broadcaster
