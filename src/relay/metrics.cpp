#include "relay/metrics.hpp"

#include "common/metrics.hpp"

namespace relay {

namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}
}  // namespace

relay_metrics::relay_metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      published_(BuildCounter()
                     .Name("relay_published_total")
                     .Help("Outbox rows the broker acknowledged, by topic")
                     .Register(*registry_)),
      publish_errors_(BuildCounter()
                          .Name("relay_publish_errors_total")
                          .Help("Outbox rows the broker did not acknowledge, by reason")
                          .Register(*registry_)),
      dead_lettered_(BuildCounter()
                         .Name("relay_dead_lettered_total")
                         .Help("Outbox rows moved to outbox_dead_letters after max_attempts rejections")
                         .Register(*registry_)
                         .Add({})),
      commit_to_ack_(BuildHistogram()
                         .Name("relay_commit_to_ack_seconds")
                         .Help("Time from an outbox row's insert to the broker's acknowledgement")
                         .Register(*registry_)
                         .Add({}, common::latency_buckets())),
      batch_size_(BuildHistogram()
                      .Name("relay_batch_size")
                      .Help("Rows per claimed batch")
                      .Register(*registry_)
                      .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
                                                                       5000, 10000})),
      partitions_owned_(gauge(*registry_, "relay_partitions_owned", "Partition leases this relay holds (of 256)")),
      database_up_(gauge(*registry_, "relay_database_up", "1 when the relay's database connection works")),
      broker_up_(gauge(*registry_, "relay_broker_up", "1 when the broker accepts the relay's messages")),
      pending_rows_(gauge(*registry_, "outbox_pending_rows",
                          "Rows in outbox_messages (exact up to 100000, then the planner's estimate)")),
      oldest_age_(gauge(*registry_, "outbox_oldest_pending_age_seconds", "Age of the oldest row in outbox_messages")),
      publish_blocked_(BuildGauge()
                           .Name("relay_publish_blocked")
                           .Help("1 while the broker refuses every message of the topic for this reason (rows stay)")
                           .Register(*registry_)),
      held_keys_(gauge(*registry_, "relay_held_keys", "Keys whose later rows wait behind a dead letter")),
      oldest_held_key_age_(gauge(*registry_, "relay_oldest_held_key_age_seconds",
                                 "How long the longest-held key has waited behind its dead letter")) {}

void relay_metrics::published(const std::string& topic, double commit_to_ack_seconds) {
  published_.Add({{"topic", topic}}).Increment();
  commit_to_ack_.Observe(commit_to_ack_seconds);
}

void relay_metrics::publish_error(const std::string& reason) { publish_errors_.Add({{"reason", reason}}).Increment(); }

}  // namespace relay

namespace relay {

void relay_metrics::publish_blocked(const std::string& topic, const std::string& reason, bool blocked) {
  publish_blocked_.Add({{"topic", topic}, {"reason", reason}}).Set(blocked ? 1 : 0);
}

}  // namespace relay
