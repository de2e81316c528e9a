// wallet-service: the HTTP JSON and gRPC APIs that debit an account, record the withdrawal and
// write its WithdrawalCreated event to the outbox, all in one PostgreSQL transaction.
//
//   wallet-service --config conf/wallet.toml [--check-config]
//
// Exit codes: 0 after SIGTERM/SIGINT (in-flight requests finished), 1 on a runtime failure
// (e.g. a port is taken), 2 on a configuration error.

#include <algorithm>
#include <iostream>
#include <string>
#include <variant>

#include <spdlog/spdlog.h>

#include "common/command_line.hpp"
#include "common/config.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"
#include "common/systemd.hpp"
#include "wallet/service.hpp"

namespace {

constexpr const char* usage = "usage: wallet-service --config FILE [--check-config]\n";

// SIGHUP: log.level and the API tokens; everything else needs a restart.
void reload(const std::string& config_path, wallet::service& service) {
  common::systemd::notify_reloading();
  try {
    auto reloaded = wallet::load_settings(config_path);
    common::set_log_level(reloaded.config.log_level);
    const auto count = reloaded.tokens ? std::to_string(reloaded.tokens->size()) : "authentication off";
    service.set_tokens(std::move(reloaded.tokens));
    spdlog::info("reloaded log.level and the API tokens ({}); other settings need a restart", count);
  } catch (const common::config_error& e) {
    spdlog::error("reload refused, keeping the running configuration: {}", e.what());
  }
  common::systemd::notify_ready();
}

}  // namespace

int main(int argc, char** argv) {
  common::process_signals signals;  // first: every thread started later inherits the signal mask
  const auto parsed = common::parse_daemon_arguments("wallet-service", usage, argc, argv);
  if (const auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& [config_path, check_only] = std::get<common::daemon_arguments>(parsed);

  common::init_logging("wallet-service", "info");
  wallet::settings settings;
  try {
    settings = wallet::load_settings(config_path);
    common::set_log_level(settings.config.log_level);
  } catch (const common::config_error& e) {
    spdlog::critical("{}", e.what());
    return common::exit_config_error;
  }
  if (check_only) {
    std::cout << "wallet-service: " << config_path << " is valid\n";
    return 0;
  }
  const auto shutdown_timeout = settings.config.shutdown_timeout;

  try {
    wallet::service service(std::move(settings));
    service.start();
    spdlog::info("wallet-service: {}", service.describe());

    // Ready once both listeners are up and the database answered: until then requests get 503 /
    // UNAVAILABLE and systemd waits.
    bool ready = false;
    auto reloads = signals.reload_generation();
    const auto watchdog = common::systemd::watchdog_ping_interval();
    while (!signals.stop_requested()) {
      if (watchdog) common::systemd::notify_watchdog();
      if (!ready) {
        const auto problem = service.health_problem();
        if (problem.empty()) {
          ready = true;
          spdlog::info("database reachable: ready");
          common::systemd::notify_ready();
          common::systemd::notify_status(service.status());
        } else {
          spdlog::warn("{}; answering 503 until it is reachable", problem);
          common::systemd::notify_status(problem);
        }
      }
      if (signals.reload_generation() != reloads) {
        reloads = signals.reload_generation();
        reload(config_path, service);
      }
      std::chrono::milliseconds pause = ready ? std::chrono::seconds(60) : std::chrono::seconds(2);
      if (watchdog) pause = std::min(pause, *watchdog);
      signals.wait_for(pause);
    }

    common::systemd::notify_stopping();
    spdlog::info("stopping: finishing in-flight requests (up to {} ms)", shutdown_timeout.count());
    service.stop(shutdown_timeout);
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("wallet-service: {}", e.what());
    return 1;
  }
}
