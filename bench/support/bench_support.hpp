// Pieces every benchmark driver in bench/ shares: result lines, process figures from /proc,
// percentiles, paced writers and a consumer that stamps when each message first arrived.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/kafka.hpp"

namespace bench {

using steady = std::chrono::steady_clock;

/// `result <name> <value>`: the lines the bench scripts read back.
void result(const std::string& name, double value);
void result(const std::string& name, std::int64_t value);

double seconds_since(steady::time_point start);
/// Wall clock in µs since the epoch (comparable with PostgreSQL's clock_timestamp() on this machine).
std::int64_t now_us();

/// A field of /proc/<pid>/status in kB ("VmHWM", "VmRSS"); -1 when the process is gone.
std::int64_t proc_status_kib(int pid, const std::string& field);
/// User + system CPU seconds of a live process.
double proc_cpu_seconds(int pid);

/// The q-quantile (nearest rank) of `values`; NaN when empty.
double percentile(std::vector<std::int64_t> values, double q);
/// `# label: p50 … p99 … max …` for people and `<name>p50_ms`, p90, p99, max result lines.
void print_latencies(const std::string& name, const std::string& label, std::vector<std::int64_t> us);

/// What a paced write reports: the id the consumer will know the row by, and (when the writer
/// knows it) the row's created_at in µs since the epoch.
struct write_receipt {
  std::int64_t id = 0;
  std::int64_t created_us = 0;
};
/// One row written at a steady rate.
struct paced_write {
  write_receipt receipt;
  std::int64_t committed_us = 0;  // now_us() once write_one returned: the writer's COMMIT came back
  bool measured = false;          // false during the warm-up
};
/// `rate` rows/s in total from `writers` threads (staggered across the period so that rows arrive
/// evenly), from 200 ms after the call for `warmup` + `seconds` seconds. Writer w calls
/// `write_one(w, seq)` with seq = 1, 2, ... across all writers; it must return once the row is
/// committed (writer w's calls come from one thread, one at a time: give each writer its own
/// connection). `tick`, when given, runs on the calling thread every 100 ms meanwhile. Returns every
/// write (warm-up ones marked), grouped by writer; rethrows the first writer's exception.
std::vector<paced_write> paced_writers(int rate, int writers, int warmup, int seconds,
                                       const std::function<write_receipt(int writer, std::int64_t seq)>& write_one,
                                       const std::function<void()>& tick = {});

/// Sum of the end offsets of a topic's partitions: how many messages it holds.
std::int64_t topic_size(const std::string& topic);

/// How an arriving message names the row it came from.
enum class message_id {
  outbox_id_header,  ///< the relay's `outbox-id` header
  seq_in_value,      ///< `"seq":N` inside the value (the payload, as every peer forwards it)
};

/// Topic configuration that makes the broker stamp every message with its append time.
inline const std::map<std::string, std::string> log_append_time{{"message.timestamp.type", "LogAppendTime"}};

/// The `"seq":N` of a payload, if it has one.
std::optional<std::int64_t> seq_of(std::string_view value);

/// A consumer of every partition of a topic, from the beginning, that stamps the first arrival of
/// each id (wall clock, µs) on its own thread.
class arrival_recorder {
 public:
  arrival_recorder(const std::string& topic, message_id id, int partitions = 6);
  ~arrival_recorder();
  arrival_recorder(const arrival_recorder&) = delete;
  arrival_recorder& operator=(const arrival_recorder&) = delete;

  std::size_t distinct();
  /// The broker's earliest and latest append time (ms since the epoch) of the ids seen so far, for a
  /// topic with message.timestamp.type=LogAppendTime (see log_append_time); 0 before any.
  std::pair<std::int64_t, std::int64_t> appended_ms();
  /// Stops reading; the results are stable afterwards.
  void stop();
  const std::unordered_map<std::int64_t, std::int64_t>& first_arrival_us() const { return first_arrival_us_; }
  std::int64_t total() const { return total_; }

 private:
  void run();

  common::kafka::handle consumer_;
  message_id id_;
  std::atomic<bool> consuming_{true};
  std::mutex mutex_;
  std::unordered_map<std::int64_t, std::int64_t> first_arrival_us_;
  std::int64_t first_appended_ms_ = 0;
  std::int64_t last_appended_ms_ = 0;
  std::int64_t total_ = 0;
  std::thread reader_;
};

}  // namespace bench
