#pragma once
// Process-wide logging on spdlog, one logger writing to stderr.
// Under systemd (stderr is the journal stream named by $JOURNAL_STREAM) lines carry a
// "<N>" syslog priority prefix and no timestamp, since journald adds both; elsewhere they
// carry an ISO-8601 timestamp.

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

}  // namespace common
