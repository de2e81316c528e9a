#pragma once
// Where withdrawals to process come from: a Kafka consumer group, a Redis Streams consumer group
// or a poll of the withdrawals table. Each source hands work to processor::process_withdrawal()
// (through handle_event() for the message queues) and acknowledges only what that finished.

#include <chrono>
#include <string>

namespace broadcaster {

class event_source {
 public:
  virtual ~event_source() = default;

  /// The startup line's wording, e.g. "MQ Mode: Kafka Consumer".
  virtual std::string describe() const = 0;

  /// One readiness probe (broker/server answers, group exists), blocking up to `timeout`.
  /// Empty when ready, otherwise what is missing. Called before READY=1 until it passes.
  virtual std::string check_ready(std::chrono::milliseconds timeout) = 0;

  /// Consumes until a stop is requested, then finishes the event in hand, acknowledges what
  /// was processed and leaves cleanly (bounded by deadlines). Throws on fatal errors only.
  virtual void run() = 0;
};

}  // namespace broadcaster
