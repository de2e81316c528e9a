// wallet-service: the HTTP JSON and gRPC APIs that debit an account, record the withdrawal and
// write its WithdrawalCreated event to the outbox, all in one PostgreSQL transaction.
//
//   wallet-service --config conf/wallet.toml [--check-config]
//
// Exit codes: 0 after SIGTERM/SIGINT (in-flight requests finished), 1 on a runtime failure
// (e.g. a port is taken), 2 on a configuration error.

#include <iostream>
#include <string>
#include <variant>

#include <spdlog/spdlog.h>

#include "common/command_line.hpp"
#include "common/config.hpp"
#include "common/daemon.hpp"
#include "common/logging.hpp"
#include "wallet/service.hpp"

namespace {
constexpr const char* usage = "usage: wallet-service --config FILE [--check-config]\n";
}  // namespace

int main(int argc, char** argv) {
  common::daemon daemon;  // first: every thread started later inherits its signal mask
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

    // SIGHUP: log.level and the API tokens; everything else needs a restart.
    daemon.on_reload([&] {
      auto reloaded = wallet::load_settings(config_path);
      common::set_log_level(reloaded.config.log_level);
      const auto count = reloaded.tokens ? std::to_string(reloaded.tokens->size()) : "authentication off";
      service.set_tokens(std::move(reloaded.tokens));
      spdlog::info("reloaded log.level and the API tokens ({}); other settings need a restart", count);
    });
    // Ready once both listeners are up and the database answered: until then requests get 503 /
    // UNAVAILABLE and systemd waits.
    if (daemon.wait_until_ready("the database", [&] { return service.health_problem(); })) {
      spdlog::info("database reachable: ready");
      daemon.on_status([&] { return service.status(); }, std::chrono::minutes(1));
      daemon.notify_ready();
      daemon.run_until_stopped();
    }

    daemon.begin_stop(shutdown_timeout, "finishing in-flight requests");
    service.stop(shutdown_timeout);
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("wallet-service: {}", e.what());
    return 1;
  }
}
