#pragma once
// What the message-queue sources share: turning a received message into a processing result.
// Thread-safety: as the processor (one per thread).

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broadcaster/processor.hpp"

namespace broadcaster {

struct inbound_event {
  std::string_view payload;
  /// Message headers (Kafka headers, or the Redis entry's "headers" JSON object):
  /// event-type, event-id, created-at, outbox-id, traceparent.
  std::map<std::string, std::string> headers;
  /// Where it came from, for logs: "topic[partition]@offset" or "stream/entry-id".
  std::string origin;
};

/// Counts the event, checks its type and payload, logs `收到提现事件 id=<withdrawal_id>` and runs
/// processor::process_withdrawal(). Events of another chain come back as skipped (acknowledge,
/// nothing touched: that chain's worker pays them). Bad events come back as dead_letter with the
/// reason (after a pending withdrawal of this chain they name was failed and refunded); the caller
/// publishes them to the DLQ.
process_result handle_event(processor& worker, metrics& counters, const inbound_event& event);

/// handle_event() for a run of events, in order, with processor::broadcast_batch() first for the
/// valid ones of this chain. One result per event, in order, up to and including the first that
/// must not be acknowledged (interrupted): events after it are not processed.
std::vector<process_result> handle_events(processor& worker, metrics& counters,
                                          const std::vector<inbound_event>& events);

}  // namespace broadcaster
