#include "common/systemd.hpp"

#include <string>

#include <systemd/sd-daemon.h>

namespace common::systemd {

void notify_ready() { sd_notify(0, "READY=1"); }
void notify_reloading() { sd_notify(0, "RELOADING=1"); }
void notify_stopping() { sd_notify(0, "STOPPING=1"); }
void notify_watchdog() { sd_notify(0, "WATCHDOG=1"); }

void notify_status(std::string_view text) {
  const std::string message = "STATUS=" + std::string(text);
  sd_notify(0, message.c_str());
}

std::optional<std::chrono::milliseconds> watchdog_ping_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(usec / 2));
}

}  // namespace common::systemd
