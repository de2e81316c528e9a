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
inline constexpr std::string_view dead_letter = "dead_letter";  // bad event, sent to the DLQ
// The node refused a send. Never final: the withdrawal stays signed (or broadcast) and is retried.
inline constexpr std::string_view rejected = "rejected";
inline constexpr std::string_view reverted = "reverted";        // mined with status 0 at depth: refunded
inline constexpr std::string_view nonce_taken = "nonce_taken";  // another transaction used the nonce at depth: refunded
inline constexpr std::string_view cancelled = "cancelled";      // operator cancel final at depth: refunded
inline constexpr std::string_view node_unavailable = "node_unavailable";          // transient RPC failure (retried)
inline constexpr std::string_view database_unavailable = "database_unavailable";  // transient DB failure (retried)
inline constexpr std::string_view internal = "internal";                          // unexpected error
}  // namespace failure_reason

/// Labels of broadcaster_events_skipped_total{reason}.
namespace skip_reason {
inline constexpr std::string_view other_chain = "other_chain";  // the event's chain is paid by another worker
}  // namespace skip_reason

struct metrics {
  explicit metrics(prometheus::Registry& registry);

  prometheus::Counter& events_consumed;
  prometheus::Counter& duplicates_skipped;
  prometheus::Counter& broadcasts;
  prometheus::Counter& rebroadcasts;
  prometheus::Counter& confirmed;
  prometheus::Counter& dead_letters;
  prometheus::Counter& fee_bumps;
  prometheus::Counter& reorgs;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Family<prometheus::Counter>& events_skipped;
  prometheus::Family<prometheus::Counter>& rpc_calls;  // {method} JSON-RPC calls to the node (a batch counts each)
  prometheus::Histogram& event_to_broadcast_seconds;
  prometheus::Gauge& consumer_lag;
  prometheus::Gauge& hot_wallet_balance_wei;
  prometheus::Gauge& oldest_pending_age_seconds;
  prometheus::Family<prometheus::Gauge>& withdrawals_by_status;         // {status} pending|signed|broadcast
  prometheus::Family<prometheus::Gauge>& oldest_in_flight_age_seconds;  // {status} signed|broadcast

  void failure(std::string_view reason) { failures.Add({{"reason", std::string(reason)}}).Increment(); }
  void skipped(std::string_view reason) { events_skipped.Add({{"reason", std::string(reason)}}).Increment(); }
  void rpc_call(std::string_view method) { rpc_calls.Add({{"method", std::string(method)}}).Increment(); }
};

}  // namespace broadcaster
