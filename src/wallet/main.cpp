// wallet-service: the HTTP JSON and gRPC APIs that debit an account, record the withdrawal and
// write its WithdrawalCreated event to the outbox, all in one PostgreSQL transaction.
//
//   wallet-service --config conf/wallet.toml [--check-config]
//
// Exit codes: 0 after SIGTERM/SIGINT (in-flight requests finished), 1 on a runtime failure
// (e.g. the port is taken), 2 on a configuration error.

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <variant>

#include <spdlog/spdlog.h>

#include "common/command_line.hpp"
#include "common/config.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"
#include "common/systemd.hpp"
#include "wallet/api.hpp"
#include "wallet/auth.hpp"
#include "wallet/config.hpp"
#include "wallet/grpc_api.hpp"
#include "wallet/operations.hpp"
#include "wallet/store.hpp"

namespace {

constexpr const char* usage = "usage: wallet-service --config FILE [--check-config]\n";

struct loaded_config {
  wallet::service_config service;
  std::shared_ptr<const wallet::token_set> tokens;
};

loaded_config load(const std::string& path) {
  auto reader = common::config_reader::from_file(path, "WALLET");
  loaded_config out{wallet::parse_config(reader), nullptr};
  reader.reject_unknown_keys();
  out.tokens = wallet::load_tokens(out.service.tokens_file, out.service.auth_disabled);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  common::process_signals signals;  // first: every thread started later inherits the signal mask
  const auto parsed = common::parse_daemon_arguments("wallet-service", usage, argc, argv);
  if (const auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& [config_path, check_only] = std::get<common::daemon_arguments>(parsed);

  common::init_logging("wallet-service", "info");

  loaded_config config;
  try {
    config = load(config_path);
    common::set_log_level(config.service.log_level);
  } catch (const common::config_error& e) {
    spdlog::critical("{}", e.what());
    return common::exit_config_error;
  }
  const auto& cfg = config.service;
  if (check_only) {
    std::cout << "wallet-service: " << config_path << " is valid\n";
    return 0;
  }

  try {
    common::connection_pool pool(cfg.database, cfg.pool_size, cfg.acquire_timeout,
                                 wallet::store::session_setup(cfg.statement_timeout));
    wallet::store store(pool, cfg.max_attempts);
    wallet::health_probe health(cfg.database, cfg.statement_timeout);
    auto registry = std::make_shared<prometheus::Registry>();
    wallet::operations operations(cfg, store, config.tokens, *registry);
    wallet::api api(operations, pool, health, registry);

    common::http::server server(cfg.http, [&api](const common::http::request& request) { return api.handle(request); });
    server.start();
    wallet::grpc_api grpc(cfg.grpc, operations, health, *registry);
    if (cfg.grpc.enabled) grpc.start();
    spdlog::info("wallet-service: database {}, pool {} connections, {} HTTP threads, gRPC {}, deposits {}, "
                 "idempotency keys {}, authentication {}",
                 common::redacted_url(cfg.database.url), cfg.pool_size, cfg.http.threads,
                 cfg.grpc.enabled ? "on" : "off", cfg.enable_deposits ? "on" : "off",
                 cfg.require_idempotency_key ? "required" : "optional",
                 config.tokens ? fmt::format("on ({} tokens)", config.tokens->size()) : "off (auth.disabled)");

    // Ready once the database answered: until then requests get 503 and systemd waits.
    bool ready = false;
    auto reloads = signals.reload_generation();
    const auto watchdog = common::systemd::watchdog_ping_interval();
    while (!signals.stop_requested()) {
      if (watchdog) common::systemd::notify_watchdog();
      if (!ready) {
        const auto problem = health.problem();
        if (problem.empty()) {
          ready = true;
          spdlog::info("database reachable: ready");
          common::systemd::notify_ready();
          common::systemd::notify_status("serving");
        } else {
          spdlog::warn("{}; answering 503 until it is reachable", problem);
          common::systemd::notify_status(problem);
        }
      }
      if (signals.reload_generation() != reloads) {
        reloads = signals.reload_generation();
        common::systemd::notify_reloading();
        try {
          auto reloaded = load(config_path);
          common::set_log_level(reloaded.service.log_level);
          operations.set_tokens(reloaded.tokens);
          spdlog::info("reloaded log.level and the API tokens ({}); other settings need a restart",
                       reloaded.tokens ? std::to_string(reloaded.tokens->size()) : "authentication off");
        } catch (const common::config_error& e) {
          spdlog::error("reload refused, keeping the running configuration: {}", e.what());
        }
        common::systemd::notify_ready();
      }
      std::chrono::milliseconds pause = ready ? std::chrono::seconds(60) : std::chrono::seconds(2);
      if (watchdog) pause = std::min(pause, *watchdog);
      signals.wait_for(pause);
    }

    common::systemd::notify_stopping();
    spdlog::info("stopping: finishing in-flight requests (up to {} ms)", cfg.shutdown_timeout.count());
    // Both listeners close at once and share the deadline.
    std::thread grpc_stop([&] { grpc.stop(cfg.shutdown_timeout); });
    server.drain(cfg.shutdown_timeout);
    grpc_stop.join();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("wallet-service: {}", e.what());
    return 1;
  }
}
