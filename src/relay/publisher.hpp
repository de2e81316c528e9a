#pragma once
// The broker side of the relay: Kafka or Redis Streams behind one interface.
//
// A publisher is used by one thread (the relay loop) and is not thread-safe. It never owns rows:
// collect() reports, per row, whether the broker acknowledged it; the caller decides what to
// delete. Nothing a publisher does blocks past the deadline it is given (plus a short grace to
// collect the reports of messages it purges at the deadline).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "relay/config.hpp"
#include "relay/message.hpp"

namespace relay {

class publisher {
 public:
  virtual ~publisher() = default;

  /// "Kafka" or "Redis Stream", as in the startup line "MQ Mode: <mode>".
  virtual std::string_view mode() const noexcept = 0;

  /// Hands `rows` to the broker in order and returns without waiting for acknowledgements, so
  /// that the caller can work meanwhile (the relay claims its next batch); collect() waits for
  /// them. One batch at a time: every send() is followed by a collect() before the next send().
  /// Blocks only while the client's local queue is full, and not past `deadline`.
  /// A row whose send fails synchronously holds back the later rows of its key in this batch.
  virtual void send(std::span<const outbox_row> rows, std::chrono::steady_clock::time_point deadline,
                    const std::function<bool()>& keep_waiting) = 0;

  /// Waits until every row of the last send() has an outcome or `deadline` passes; rows without an
  /// outcome by then are `failed` (and taken back from the client where it can). Returns one result
  /// per row, in the order sent. `keep_waiting` is called at least every 100 ms while waiting (the
  /// caller pings its watchdog there); returning false ends the wait early as if the deadline had
  /// passed.
  virtual std::vector<delivery_result> collect(std::chrono::steady_clock::time_point deadline,
                                               const std::function<bool()>& keep_waiting) = 0;

  /// send() then collect().
  std::vector<delivery_result> publish(std::span<const outbox_row> rows, std::chrono::steady_clock::time_point deadline,
                                       const std::function<bool()>& keep_waiting) {
    send(rows, deadline, keep_waiting);
    return collect(deadline, keep_waiting);
  }

  /// True when the broker answers within `timeout` (Kafka metadata, Redis PING).
  virtual bool reachable(std::chrono::milliseconds timeout) = 0;

  /// Makes the client look at `topics` again (they were blocked: e.g. created meanwhile). Blocks
  /// at most ~2 s per topic. Default: nothing to refresh.
  virtual void refresh_topics(std::span<const std::string> /*topics*/) {}

  /// Serves pending client events without blocking; returns a description of a connectivity
  /// problem reported since the last call (e.g. "all brokers down"), if any.
  virtual std::optional<std::string> connectivity_problem() = 0;

  /// Delivers or drops whatever is still queued, waiting at most `timeout`; returns how many
  /// messages were left undelivered (logged by the caller).
  virtual std::size_t close(std::chrono::milliseconds timeout) = 0;
};

}  // namespace relay
