#include "broadcaster/metrics.hpp"

#include "common/metrics.hpp"

namespace broadcaster {

namespace {
prometheus::Counter& counter(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}
}  // namespace

metrics::metrics(prometheus::Registry& registry)
    : events_consumed(counter(registry, "broadcaster_events_consumed_total",
                              "WithdrawalCreated events received from the message queue (valid or not)")),
      duplicates_skipped(counter(registry, "broadcaster_duplicates_skipped_total",
                                 "Events for withdrawals already broadcast, confirmed or failed")),
      broadcasts(counter(registry, "broadcaster_broadcasts_total",
                         "Withdrawals moved to broadcast (the node accepted or already knew the transaction)")),
      rebroadcasts(counter(registry, "broadcaster_rebroadcasts_total",
                           "Broadcast transactions re-sent because no receipt arrived in time")),
      confirmed(counter(registry, "broadcaster_confirmed_total", "Withdrawals confirmed by a successful receipt")),
      dead_letters(counter(registry, "broadcaster_dead_letters_total", "Events published to the dead-letter topic")),
      failures(prometheus::BuildCounter()
                   .Name("broadcaster_failures_total")
                   .Help("Failures by reason: dead_letter, rejected, reverted (withdrawal failed and refunded), "
                         "node_unavailable, database_unavailable (retried), internal")
                   .Register(registry)),
      event_to_broadcast_seconds(prometheus::BuildHistogram()
                                     .Name("broadcaster_event_to_broadcast_seconds")
                                     .Help("Time from the withdrawal's creation to its broadcast")
                                     .Register(registry)
                                     .Add({}, common::latency_buckets())),
      consumer_lag(prometheus::BuildGauge()
                       .Name("broadcaster_consumer_lag")
                       .Help("Events not yet consumed: Kafka, summed over the assigned partitions; Redis, the "
                             "group's lag")
                       .Register(registry)
                       .Add({})) {
  for (auto reason : {failure_reason::dead_letter, failure_reason::rejected, failure_reason::reverted,
                      failure_reason::node_unavailable, failure_reason::database_unavailable,
                      failure_reason::internal}) {
    failures.Add({{"reason", std::string(reason)}});
  }
}

}  // namespace broadcaster
