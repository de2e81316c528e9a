#pragma once
// SIGTERM/SIGINT (stop) and SIGHUP (reload) for the daemons.
//
// Construct it first in main(), before any other thread starts: it blocks the three signals in
// the calling thread, so every thread created afterwards inherits the mask, and a dedicated
// thread receives them with sigwait(). Thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace common {

class process_signals {
 public:
  process_signals();
  ~process_signals();
  process_signals(const process_signals&) = delete;
  process_signals& operator=(const process_signals&) = delete;

  bool stop_requested() const noexcept { return stop_.load(); }
  /// Asks for a stop as SIGTERM would (used by tests and fatal errors).
  void request_stop();

  /// Sleeps up to `timeout`, waking early on a stop or a reload. Returns stop_requested().
  bool wait_for(std::chrono::milliseconds timeout);

  /// Increments on every SIGHUP; compare with a remembered value to see a reload is due.
  std::uint64_t reload_generation() const noexcept { return reloads_.load(); }

 private:
  void run();

  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> reloads_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace common
