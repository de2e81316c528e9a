#pragma once
// The one supervisor of a daemon process: signals, systemd readiness, STATUS=, the watchdog,
// SIGHUP reload and the stop deadline. wallet-service, outbox-relay and broadcaster-worker all
// run under it, so they answer systemd the same way.
//
// Construct it first in main(), before any other thread starts: it owns the process_signals that
// block SIGTERM/SIGINT/SIGHUP for every thread created later, and it ignores SIGPIPE (a peer
// closing a socket must surface as an error code, not kill the process).
//
// Threads: tick(), wait_for(), wait_until_ready() and run_until_stopped() run the hooks and must
// be called from one thread (the supervising one). stop_requested(), request_stop() and
// notify_ready() may be called from any thread.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/signals.hpp"

namespace common {

class daemon {
 public:
  using clock = std::chrono::steady_clock;

  daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  /// STATUS= text for `systemctl status`, asked at most every `every`.
  void on_status(std::function<std::string()> text, std::chrono::milliseconds every = std::chrono::seconds(5));
  /// Runs on SIGHUP between RELOADING=1 and READY=1. An exception keeps the running configuration:
  /// it is logged, never propagated.
  void on_reload(std::function<void()> reload);
  /// The watchdog is pinged only while this answers an empty string; otherwise its text is logged and
  /// the pings stop, so systemd restarts a process whose worker thread is stuck. Default: always alive.
  void on_watchdog_check(std::function<std::string()> problem);

  bool stop_requested() const noexcept { return signals_.stop_requested(); }
  /// Asks for a stop as SIGTERM would (fatal errors in worker threads, tests).
  void request_stop() { signals_.request_stop(); }
  process_signals& signals() noexcept { return signals_; }

  /// READY=1 (once; later calls do nothing) and a first STATUS=.
  void notify_ready();
  bool ready() const noexcept { return ready_; }

  /// Watchdog ping, STATUS= and a due reload. Cheap; call it from the supervising loop at least
  /// every second.
  void tick();
  /// tick() without the reload: for waits inside work that a reload must not interrupt.
  void ping();
  /// A SIGHUP arrived that the next tick() will act on.
  bool reload_pending() const noexcept { return signals_.reload_generation() != reloads_seen_; }
  /// Half of systemd's WatchdogSec, or nullopt when the watchdog is off.
  std::optional<std::chrono::milliseconds> watchdog_interval() const noexcept { return watchdog_interval_; }
  /// Sleeps up to `timeout` (ticking every second at most), waking early on a stop.
  /// Returns stop_requested().
  bool wait_for(std::chrono::milliseconds timeout);
  /// Ticks until a stop is requested. For daemons whose main thread only supervises.
  void run_until_stopped();
  /// Retries `probe` (empty string = ready) with a jittered backoff of 0.5 s..10 s, logging each
  /// problem and showing it in STATUS=. True once it passes; false when a stop came first.
  bool wait_until_ready(std::string_view what, const std::function<std::string()>& probe);

  /// Starts the stop on its first call: STOPPING=1, a log line and a deadline `timeout` from now.
  /// Later calls return the same deadline.
  clock::time_point begin_stop(std::chrono::milliseconds timeout, std::string_view what_is_finished);
  /// The deadline begin_stop() set, if a stop has begun.
  std::optional<clock::time_point> stop_deadline() const noexcept { return stop_deadline_; }

 private:
  void ping_watchdog(clock::time_point now);
  void reload_if_due();

  process_signals signals_;
  std::optional<std::chrono::milliseconds> watchdog_interval_;
  clock::time_point next_watchdog_{};
  std::function<std::string()> watchdog_problem_;
  std::function<std::string()> status_text_;
  std::chrono::milliseconds status_every_{std::chrono::seconds(5)};
  clock::time_point next_status_{};
  std::function<void()> reload_;
  std::uint64_t reloads_seen_ = 0;
  bool ready_ = false;
  std::optional<clock::time_point> stop_deadline_;
};

}  // namespace common
