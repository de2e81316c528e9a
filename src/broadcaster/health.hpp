#pragma once
// Liveness and health of the worker's loops, for /healthz and the systemd watchdog.
// Thread-safe.

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/signals.hpp"

namespace broadcaster {

class health {
 public:
  using clock = std::chrono::steady_clock;

  /// A loop (e.g. "source", "tracker") shows it is alive. Loops that block call it at least
  /// every few seconds, also while waiting to retry.
  void beat(std::string_view loop);
  /// Forgets a loop that ended on purpose (no stall reported for it).
  void retire(std::string_view loop);

  /// A problem an operator should see (e.g. "eth node unreachable: ..."), until cleared.
  void set_problem(std::string_view component, std::string text);
  void clear_problem(std::string_view component);

  void set_ready(bool ready) { ready_ = ready; }
  bool ready() const noexcept { return ready_; }

  /// Empty when healthy; otherwise the reasons: not ready yet, a loop silent for longer than
  /// `stall_after`, or problems standing for longer than `problem_grace`.
  std::string problem(std::chrono::milliseconds stall_after, std::chrono::milliseconds problem_grace) const;
  /// True while every loop beat within `stall_after` (the watchdog's question).
  bool alive(std::chrono::milliseconds stall_after) const;

 private:
  struct standing_problem {
    std::string text;
    clock::time_point since;
  };
  mutable std::mutex mutex_;
  std::map<std::string, clock::time_point, std::less<>> beats_;
  std::map<std::string, standing_problem, std::less<>> problems_;
  std::atomic<bool> ready_{false};
};

/// signals.wait_for(duration) in slices of at most a second, beating `loop` in between, so long
/// waits do not look like a stall. Returns true when a stop was requested.
bool wait_alive(common::process_signals& signals, health& status, std::string_view loop,
                std::chrono::milliseconds duration);

}  // namespace broadcaster
