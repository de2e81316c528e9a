#include "common/signals.hpp"

#include <pthread.h>
#include <csignal>

#include <spdlog/spdlog.h>

namespace common {
namespace {
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR2);  // internal: wakes the signal thread at destruction
  return set;
}
}  // namespace

process_signals::process_signals() {
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] { run(); });
}

process_signals::~process_signals() {
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

void process_signals::run() {
  const sigset_t set = handled_signals();
  for (;;) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    if (signal == SIGUSR2) return;
    if (signal == SIGHUP) {
      spdlog::info("SIGHUP received: reloading configuration");
      ++reloads_;
    } else {
      spdlog::info("{} received: stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
      stop_ = true;
    }
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
}

void process_signals::request_stop() {
  stop_ = true;
  std::lock_guard lock(mutex_);
  wake_.notify_all();
}

bool process_signals::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto generation = reloads_.load();
  wake_.wait_for(lock, timeout, [&] { return stop_.load() || reloads_.load() != generation; });
  return stop_.load();
}

}  // namespace common
