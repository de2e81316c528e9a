// Pieces every benchmark driver in bench/ shares: result lines, process figures from /proc,
// percentiles and a consumer that stamps when each message first arrived.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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
