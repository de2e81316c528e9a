#include "common/daemon.hpp"

#include <algorithm>
#include <csignal>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/backoff.hpp"
#include "common/systemd.hpp"

namespace common {
namespace {
using namespace std::chrono_literals;
constexpr auto tick_slice = 1s;
}  // namespace

daemon::daemon() : watchdog_interval_(systemd::watchdog_ping_interval()) {
  std::signal(SIGPIPE, SIG_IGN);
  reloads_seen_ = signals_.reload_generation();
}

void daemon::on_status(std::function<std::string()> text, std::chrono::milliseconds every) {
  status_text_ = std::move(text);
  status_every_ = every;
}

void daemon::on_reload(std::function<void()> reload) { reload_ = std::move(reload); }

void daemon::on_watchdog_check(std::function<std::string()> problem) { watchdog_problem_ = std::move(problem); }

void daemon::notify_ready() {
  if (ready_) return;
  ready_ = true;
  systemd::notify_ready();
  next_status_ = {};  // the next tick shows the ready status at once
}

void daemon::tick() {
  ping();
  reload_if_due();
}

void daemon::ping() {
  const auto now = clock::now();
  ping_watchdog(now);
  if (status_text_ && now >= next_status_) {
    systemd::notify_status(status_text_());
    next_status_ = now + status_every_;
  }
}

void daemon::ping_watchdog(clock::time_point now) {
  if (!watchdog_interval_ || now < next_watchdog_) return;
  if (watchdog_problem_) {
    if (auto problem = watchdog_problem_(); !problem.empty()) {
      spdlog::error("not pinging the watchdog: {}", problem);
      next_watchdog_ = now + *watchdog_interval_;
      return;
    }
  }
  systemd::notify_watchdog();
  next_watchdog_ = now + *watchdog_interval_;
}

void daemon::reload_if_due() {
  const auto generation = signals_.reload_generation();
  if (generation == reloads_seen_) return;
  reloads_seen_ = generation;
  if (!reload_) {
    spdlog::info("SIGHUP: nothing to reload");
    return;
  }
  if (ready_) systemd::notify_reloading();
  try {
    reload_();
  } catch (const std::exception& e) {
    spdlog::error("reload refused, keeping the running configuration: {}", e.what());
  }
  if (ready_) systemd::notify_ready();
}

bool daemon::wait_for(std::chrono::milliseconds timeout) {
  const auto until = clock::now() + timeout;
  tick();
  for (auto now = clock::now(); now < until && !stop_requested(); now = clock::now()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + 1ms;
    signals_.wait_for(std::min<std::chrono::milliseconds>(left, tick_slice));
    tick();
  }
  return stop_requested();
}

void daemon::run_until_stopped() {
  while (!wait_for(std::chrono::hours(1))) {
  }
}

bool daemon::wait_until_ready(std::string_view what, const std::function<std::string()>& probe) {
  backoff delay(500ms, 10s);
  for (;;) {
    std::string problem;
    try {
      problem = probe();
    } catch (const std::exception& e) {
      problem = e.what();
    }
    if (problem.empty()) return true;
    const auto wait = delay.next();
    spdlog::warn("waiting for {}: {}; next try in {} ms", what, problem, wait.count());
    systemd::notify_status(fmt::format("waiting for {}: {}", what, problem));
    if (wait_for(wait)) return false;
  }
}

daemon::clock::time_point daemon::begin_stop(std::chrono::milliseconds timeout, std::string_view what_is_finished) {
  if (!stop_deadline_) {
    stop_deadline_ = clock::now() + timeout;
    systemd::notify_stopping();
    systemd::notify_status(fmt::format("stopping: {}", what_is_finished));
    spdlog::info("stopping: {} (within {} ms)", what_is_finished, timeout.count());
  }
  return *stop_deadline_;
}

}  // namespace common
