#pragma once
// Process-wide logging on spdlog, one logger writing to stderr.
// Under systemd (stderr is the journal stream named by $JOURNAL_STREAM) lines carry a
// "<N>" syslog priority prefix and no timestamp, since journald adds both; elsewhere they
// carry an ISO-8601 timestamp.

#include <chrono>
#include <string>
#include <string_view>

namespace common {

/// Installs the default logger named `daemon`. Call once at start, before other threads.
void init_logging(std::string_view daemon, std::string_view level);

/// Changes the level at run time (SIGHUP reload). `level` is one of
/// trace, debug, info, warn, error, critical, off; throws config_error("log.level") otherwise.
void set_log_level(std::string_view level);

/// True when stderr is connected to the systemd journal.
bool stderr_is_journal();

/// A warning about a condition that repeats every retry (a node down, a broker unreachable):
/// logged at once when its text changes, otherwise at most once per `interval`, so the log shows
/// it without being flooded. Not thread-safe: one per loop.
class repeated_warning {
 public:
  explicit repeated_warning(std::chrono::steady_clock::duration interval = std::chrono::seconds(30))
      : interval_(interval) {}

  /// Logs `text` at warn level unless the same text was logged less than `interval` ago.
  /// Returns true when it logged.
  bool warn(const std::string& text);
  /// The condition cleared: forgets the last text, so its return is logged again at once.
  /// Returns true when there was one (the caller may then log the recovery).
  bool clear();

 private:
  std::chrono::steady_clock::duration interval_;
  std::string last_;
  std::chrono::steady_clock::time_point last_at_{};
};

}  // namespace common
