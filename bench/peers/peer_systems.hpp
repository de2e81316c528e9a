#pragma once
// The systems peer_bench measures (peer_bench.cpp): our relay in a schema of its own, or a peer
// driven through bench/peers/<peer>/peer.sh (bench/peers/README.md), and their processes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

namespace peer_bench {

/// One system under test: where its rows go, how it starts and how it is cleaned up.
class system_under_test {
 public:
  virtual ~system_under_test() = default;
  virtual std::string name() const = 0;
  /// The database URL the rows are written through.
  virtual std::string url() const = 0;
  /// The schema its tables live in.
  virtual std::string schema() const = 0;
  /// One INSERT with $1 = key, $2 = payload.
  virtual std::string insert_sql() const = 0;
  /// Starts its processes (logs: LOG, LOG.2, ...).
  virtual std::vector<std::unique_ptr<test_support::child_process>> start(const std::string& log) = 0;
};

/// `relay` (outbox-relay, `instances` of them sharing the lease partitions) or the folder of a
/// peer (bench/peers/<peer>), publishing to `topic`.
std::unique_ptr<system_under_test> make_system(const std::string& system, int instances, const std::string& topic);

/// A started system's processes: whether they run, peak RSS while they run (the largest one's),
/// their CPU together at the end, and a stop.
class running_system {
 public:
  running_system(system_under_test& system, const std::string& log);
  running_system(const running_system&) = delete;
  running_system& operator=(const running_system&) = delete;
  ~running_system() { stop(); }

  /// Throws with the logs when a process is gone.
  void require_running(std::string_view during);
  bool running();
  /// Samples the processes' RSS.
  void sample();
  /// Prints and writes the result lines for peak RSS and CPU over `rows` rows.
  void report(std::int64_t rows);
  /// SIGTERM, then SIGKILL after 60 s.
  void stop();

 private:
  std::string name_;
  std::vector<std::unique_ptr<test_support::child_process>> processes_;
  std::int64_t peak_rss_kib_ = 0;
};

}  // namespace peer_bench
