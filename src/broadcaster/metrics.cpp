#include "broadcaster/metrics.hpp"

#include "common/metrics.hpp"

namespace broadcaster {

namespace {
prometheus::Counter& counter(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}
prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
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
                           "Sends of a version the node had been given before (no receipt yet, or after a reorg)")),
      confirmed(counter(registry, "broadcaster_confirmed_total",
                        "Withdrawals confirmed: a payment version mined successfully, chain.confirmations deep")),
      dead_letters(counter(registry, "broadcaster_dead_letters_total", "Events published to the dead-letter topic")),
      fee_bumps(counter(registry, "broadcaster_fee_bumps_total",
                        "Replacement versions signed with higher fees (payments not mined in time, and cancels)")),
      reorgs(
          counter(registry, "broadcaster_reorgs_total", "Versions seen mined whose block a reorg removed or replaced")),
      failures(prometheus::BuildCounter()
                   .Name("broadcaster_failures_total")
                   .Help("Failures by reason. Refunded: reverted, nonce_taken, cancelled, dead_letter (a pending "
                         "withdrawal named by a bad event). Retried: rejected (a node refused a send), "
                         "node_unavailable, database_unavailable, internal")
                   .Register(registry)),
      events_skipped(prometheus::BuildCounter()
                         .Name("broadcaster_events_skipped_total")
                         .Help("Events acknowledged without processing, by reason (other_chain: paid by the worker "
                               "of that chain)")
                         .Register(registry)),
      rpc_calls(prometheus::BuildCounter()
                    .Name("broadcaster_rpc_calls_total")
                    .Help("JSON-RPC calls made to the Ethereum node by the event path and the confirmation tracker, "
                          "by method (each call of a batch counts)")
                    .Register(registry)),
      event_to_broadcast_seconds(prometheus::BuildHistogram()
                                     .Name("broadcaster_event_to_broadcast_seconds")
                                     .Help("Time from the withdrawal's creation to its broadcast")
                                     .Register(registry)
                                     .Add({}, common::latency_buckets())),
      consumer_lag(gauge(registry, "broadcaster_consumer_lag",
                         "Events not yet consumed: Kafka, summed over the assigned partitions; Redis, the group's "
                         "lag")),
      hot_wallet_balance_wei(gauge(registry, "broadcaster_hot_wallet_balance_wei",
                                   "The hot wallet's balance at the latest block, in wei (read by the tracker)")),
      oldest_pending_age_seconds(gauge(registry, "broadcaster_oldest_pending_age_seconds",
                                       "Age of the oldest pending withdrawal of this worker's chain (0: none)")),
      withdrawals_by_status(prometheus::BuildGauge()
                                .Name("broadcaster_withdrawals_by_status")
                                .Help("Open withdrawals of this worker's chain by status")
                                .Register(registry)),
      oldest_in_flight_age_seconds(prometheus::BuildGauge()
                                       .Name("broadcaster_oldest_in_flight_age_seconds")
                                       .Help("Time the oldest withdrawal in this status has been there "
                                             "(signed: since signing, broadcast: since the first broadcast)")
                                       .Register(registry)) {
  for (auto reason : {failure_reason::dead_letter, failure_reason::rejected, failure_reason::reverted,
                      failure_reason::nonce_taken, failure_reason::cancelled, failure_reason::node_unavailable,
                      failure_reason::database_unavailable, failure_reason::internal}) {
    failures.Add({{"reason", std::string(reason)}});
  }
  events_skipped.Add({{"reason", std::string(skip_reason::other_chain)}});
  for (const char* status : {"pending", "signed", "broadcast"}) withdrawals_by_status.Add({{"status", status}});
  for (const char* status : {"signed", "broadcast"}) oldest_in_flight_age_seconds.Add({{"status", status}});
}

}  // namespace broadcaster
