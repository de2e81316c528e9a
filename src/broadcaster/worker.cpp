#include "broadcaster/worker.hpp"

#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/confirmation_tracker.hpp"
#include "broadcaster/db_poll_source.hpp"
#include "broadcaster/eth_rpc.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/kafka_source.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/redis_source.hpp"
#include "common/http_server.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"

namespace broadcaster {
namespace {

using namespace std::chrono_literals;

// Every blocking step of a loop is bounded well below this (rpc_timeout, lock_timeout,
// statement_timeout, Kafka commit deadlines); a loop silent for longer is stuck.
constexpr auto stall_after = 25s;
// A transient problem (node or broker down) makes /healthz fail once it stands this long.
constexpr auto problem_grace = 30s;
constexpr auto readiness_probe_timeout = 5s;
// The loops finish the event in hand within their own bounded steps (rpc_timeout, lock_timeout, commit
// deadlines); systemd's TimeoutStopSec is the hard limit.
constexpr auto stop_timeout = 30s;
constexpr std::size_t pool_size = 4;  // source, tracker, and one spare for each

// daemon::wait_until_ready that also shows the problem in /healthz while it stands.
bool wait_until_ready(common::daemon& daemon, health& status, const char* what,
                      const std::function<std::string()>& probe) {
  return daemon.wait_until_ready(what, [&]() -> std::string {
    std::string problem;
    try {
      problem = probe();
    } catch (const std::exception& e) {
      problem = e.what();
    }
    if (problem.empty()) {
      status.clear_problem(what);
    } else {
      status.set_problem(what, problem);
    }
    return problem;
  });
}

// SIGHUP: the log level; everything else needs a restart.
void reload_log_level(const std::filesystem::path& config_path) {
  auto reader = common::config_reader::from_file(config_path, "BROADCASTER");
  const auto level = reader.get_log_level("info");
  common::set_log_level(level);
  spdlog::info("reloaded {}: log level {}", config_path.string(), level);
}

std::string status_line(const std::string& source, const metrics& m) {
  return fmt::format("{}; {:.0f} events, {:.0f} broadcast, {:.0f} confirmed, {:.0f} duplicates, lag {:.0f}", source,
                     m.events_consumed.Value(), m.broadcasts.Value(), m.confirmed.Value(), m.duplicates_skipped.Value(),
                     m.consumer_lag.Value());
}

std::string source_description(const settings& config) {
  if (config.source == source_mode::db_poll)
    return fmt::format("Source: DB poll every {}", common::format_duration(config.poll_interval));
  return config.mq == common::mq_type::kafka ? "MQ Mode: Kafka Consumer" : "MQ Mode: Redis Stream Consumer";
}

// The database is reachable and migrated to a schema this worker understands.
bool wait_for_database(common::connection_pool& pool, common::daemon& daemon, health& status) {
  return wait_until_ready(daemon, status, "database", [&pool] {
    auto lease = pool.acquire();
    pqxx::nontransaction tx(*lease);
    if (!tx.exec1("SELECT to_regclass('withdrawal_transactions') IS NOT NULL")[0].as<bool>()) {
      return std::string(
          "table withdrawal_transactions not found in the search_path: migrate the schema "
          "(walletctl migrate up)");
    }
    return std::string();
  });
}

// The node's chain id, checked against chain.chain_id. nullopt: stop requested (exit 0) or a
// contradiction (logged; exit 2 through `exit_code`).
std::optional<std::uint64_t> resolve_chain_id(const settings& config, common::daemon& daemon, health& status,
                                              int& exit_code) {
  eth_rpc rpc(config.chain.rpc_url, config.chain.rpc_timeout);
  std::uint64_t node_chain_id = 0;
  exit_code = 0;
  if (!wait_until_ready(daemon, status, "eth node", [&] {
        node_chain_id = rpc.chain_id();
        return std::string();
      })) {
    return std::nullopt;
  }
  if (config.chain.chain_id != 0 && config.chain.chain_id != node_chain_id) {
    spdlog::critical(
        "config: chain.chain_id is {} but the node at {} serves chain {}: fix chain.chain_id or "
        "chain.rpc_url",
        config.chain.chain_id, rpc.url(), node_chain_id);
    exit_code = common::exit_config_error;
    return std::nullopt;
  }
  spdlog::info("eth node {} serves chain id {}", rpc.url(), node_chain_id);
  return node_chain_id;
}

std::unique_ptr<event_source> make_source(const settings& config, processor& worker, metrics& counters, health& status,
                                          common::process_signals& signals) {
  if (config.source == source_mode::db_poll) return make_db_poll_source(config, worker, status, signals);
  if (config.mq == common::mq_type::kafka) return make_kafka_source(config, worker, counters, status, signals);
  return make_redis_source(config, worker, counters, status, signals);
}

// A loop on its own thread; an exception stops the whole process (exit 1).
std::thread start_loop(const char* what, std::atomic<bool>& fatal, common::process_signals& signals,
                       std::function<void()> body) {
  return std::thread([what, &fatal, &signals, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& e) {
      spdlog::critical("{} failed: {}", what, e.what());
      fatal = true;
      signals.request_stop();
    }
  });
}

}  // namespace

int run_worker(const std::filesystem::path& config_path, const settings& config, const chain::private_key& key,
               common::daemon& daemon) {
  auto& signals = daemon.signals();
  auto registry = std::make_shared<prometheus::Registry>();
  metrics counters(*registry);
  health status;

  common::http::server operations(config.http, common::operations_handler(registry, [&status] {
                                    return status.problem(stall_after, problem_grace);
                                  }));
  try {
    operations.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot serve /metrics and /healthz: {} (http.listen / http.port)", e.what());
    return 1;
  }

  const std::string source_line = source_description(config);
  spdlog::info("{}", source_line);
  spdlog::info(
      "broadcaster-worker: chain \"{}\" via {}, {} transactions, {} confirmation(s), hot wallet {}, database {}",
      config.chain.name, redacted_rpc_url(config.chain.rpc_url),
      config.chain.tx_type == transaction_type::legacy ? "legacy (EIP-155)" : "EIP-1559", config.chain.confirmations,
      key.address().to_checksum_string(), common::redacted_url(config.database.url));

  common::connection_pool pool(config.database, pool_size, 10s, [](pqxx::connection& connection) {
    // Bounded waits: a row lock held by a stuck worker or a runaway statement becomes a retryable error.
    pqxx::nontransaction tx(connection);
    tx.exec("SET lock_timeout = '5s'; SET statement_timeout = '15s'");
  });
  if (!wait_for_database(pool, daemon, status)) return 0;
  int exit_code = 0;
  const auto chain_id = resolve_chain_id(config, daemon, status, exit_code);
  if (!chain_id) return exit_code;

  processor source_processor(config, *chain_id, key, pool, counters, status, signals, "source");
  processor tracker_processor(config, *chain_id, key, pool, counters, status, signals, "tracker");
  std::unique_ptr<event_source> source;
  try {
    source = make_source(config, source_processor, counters, status, signals);
  } catch (const common::config_error& e) {
    spdlog::critical("{}", e.what());
    return common::exit_config_error;
  }
  const char* source_name = config.source == source_mode::db_poll ? "source"
                            : config.mq == common::mq_type::kafka ? "Kafka"
                                                                  : "Redis";
  if (!wait_until_ready(daemon, status, source_name, [&] { return source->check_ready(readiness_probe_timeout); })) {
    return 0;
  }

  confirmation_tracker tracker(config, tracker_processor, pool, counters, status, signals);
  std::atomic<bool> fatal{false};
  status.beat("source");
  status.beat("tracker");
  std::thread source_thread = start_loop("event source", fatal, signals, [&] { source->run(); });
  std::thread tracker_thread = start_loop("confirmation tracker", fatal, signals, [&] { tracker.run(); });

  status.set_ready(true);
  daemon.on_reload([&config_path] { reload_log_level(config_path); });
  daemon.on_status([&] { return status_line(source_line, counters); });
  // A stuck loop stops the pings and lets systemd restart the process.
  daemon.on_watchdog_check(
      [&status] { return status.alive(stall_after) ? std::string() : status.problem(stall_after, problem_grace); });
  daemon.notify_ready();
  spdlog::info("ready: {}", source_line);
  daemon.run_until_stopped();

  daemon.begin_stop(stop_timeout, "finishing the event in hand");
  source_thread.join();
  tracker_thread.join();
  operations.drain(2s);
  spdlog::info("stopped");
  return fatal ? 1 : 0;
}

}  // namespace broadcaster
