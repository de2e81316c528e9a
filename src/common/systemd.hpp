#pragma once
// sd_notify(3) glue. Every call is a no-op when $NOTIFY_SOCKET is unset (not under systemd).

#include <chrono>
#include <optional>
#include <string_view>

namespace common::systemd {

void notify_ready();
void notify_reloading();
void notify_stopping();
/// STATUS=<text>, shown by `systemctl status`.
void notify_status(std::string_view text);
void notify_watchdog();

/// How often to send WATCHDOG=1: half of WatchdogSec, or nullopt when the watchdog is off.
std::optional<std::chrono::milliseconds> watchdog_ping_interval();

}  // namespace common::systemd
