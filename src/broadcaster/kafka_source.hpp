#pragma once
// The Kafka consumer-group source.
//
// - group.id = consumer.group, partition.assignment.strategy = cooperative-sticky,
//   auto.offset.reset = earliest, session.timeout.ms = 10000; kafka.properties override them.
// - What one poll fetched (up to 100 messages) is processed as a run, in order
//   (handle_events(): processor::broadcast_batch() signs and sends the ordinary ones together,
//   process_withdrawal() does the rest).
// - At-least-once: enable.auto.offset.store = false; an event's offset is stored only after
//   its database effects are committed (or after a bad event reached the DLQ);
//   stored offsets are auto-committed every second, synchronously (with a deadline) when
//   partitions are revoked, and before leaving the group.
// - Bad events are produced to consumer.dlq_topic (kafka_dead_letters.hpp: idempotent producer, acks=all) with the
//   original key, value and headers plus `error`, `original-topic`, `original-partition`,
//   `original-offset`; the offset is stored only after the DLQ delivery report arrived.
// - Stop: the run in hand is finished (or left at the event a retry was interrupted in),
//   offsets are committed, the consumer leaves the group (rd_kafka_consumer_close_queue with a
//   deadline).
// Not thread-safe: run() runs on one thread.

#include <memory>

#include "broadcaster/event_source.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/settings.hpp"
#include "common/signals.hpp"

namespace broadcaster {

/// Creates the consumer (subscribed) and the DLQ producer; connects lazily.
/// Throws common::config_error when librdkafka rejects a property.
std::unique_ptr<event_source> make_kafka_source(const settings& config, processor& worker, metrics& counters,
                                                health& status, common::process_signals& signals);

}  // namespace broadcaster
