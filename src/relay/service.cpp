// Process plumbing of the relay loop: start-up, the main loop, signals, systemd, /healthz, stop.
// The loop's states live in connectivity.cpp, its work in pipeline.cpp (see service_impl.hpp).

#include <algorithm>
#include <system_error>

#include <fmt/format.h>
#include <pqxx/except>
#include <spdlog/spdlog.h>

#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/systemd.hpp"
#include "relay/publishers.hpp"
#include "relay/service_impl.hpp"

namespace relay {

using namespace std::chrono_literals;

namespace {
constexpr auto status_interval = 1s;
}  // namespace

service::impl::impl(relay_config c, std::filesystem::path path, common::daemon& d)
    : config(std::move(c)),
      config_path(std::move(path)),
      daemon(d),
      database_backoff(config.outbox.broker_backoff, config.outbox.broker_backoff_max),
      broker_backoff(config.outbox.broker_backoff, config.outbox.broker_backoff_max),
      row_backoff(config.outbox.retry_backoff, config.outbox.retry_backoff_max),
      topic_backoff(config.outbox.broker_backoff, config.outbox.broker_backoff_max) {
  daemon.on_reload([this] { reload(); });
  daemon.on_status([this] { return status_text(); }, status_interval);
}

service::service(relay_config config, std::filesystem::path config_path, common::daemon& daemon)
    : impl_(std::make_unique<impl>(std::move(config), std::move(config_path), daemon)) {}
service::~service() = default;
int service::run() { return impl_->run(); }

int service::impl::run() {
  try {
    broker = make_publisher(config);
  } catch (const common::config_error& e) {
    spdlog::error("{}", e.what());
    return common::exit_config_error;
  }
  spdlog::info("MQ Mode: {}", broker->mode());
  metrics.database_up(false);
  metrics.broker_up(false);
  metrics.partitions_owned(0);

  http = std::make_unique<common::http::server>(
      config.http, common::operations_handler(metrics.registry(), [this] { return health_problem(); }));
  try {
    http->start();
  } catch (const std::system_error& e) {
    spdlog::error("operations endpoint: {} (set [http] port, RELAY_HTTP_PORT)", e.what());
    return 1;
  }

  // Start-up: READY=1 only once both ends answer; until then keep trying (systemd's
  // TimeoutStartSec decides how long that may take).
  while (!stopping()) {
    housekeeping();
    if (!db && !connect_database()) {
      pause(database_backoff.next());
      continue;
    }
    try {
      step_aside();  // the other relays leave it out of their fair share until it can publish
      if (!probe_broker()) {
        broker_unavailable(config.mq == common::mq_type::kafka
                               ? "no Kafka broker answered at " + config.kafka.bootstrap_servers
                               : "Redis did not answer at " + config.redis.url);
        pause(broker_backoff.next());
        continue;
      }
      step_back_in();
    } catch (const std::exception& e) {
      database_failed(e);
      continue;
    }
    broker_available();
    ready = true;
    spdlog::info("relay ready: schema {}, batch_size {}, poll_interval {}ms", db->schema(), config.outbox.batch_size,
                 config.outbox.poll_interval.count());
    daemon.notify_ready();
    break;
  }

  bool claim_now = true;
  while (!stopping()) {
    housekeeping();
    try {
      if (!db) {
        if (!connect_database()) {
          pause(database_backoff.next());
          continue;
        }
        claim_now = true;
      }
      if (!broker_up) {
        step_aside();
        pause(broker_backoff.next());
        if (stopping()) break;
        if (!probe_broker()) continue;
        step_back_in();
        claim_now = true;  // it answers: a batch that goes through marks it up
      }
      refresh_from_heartbeat(claim_now);
      if (claim_now && !leases.owned().empty()) {
        const auto outcome = run_batches();
        if (!outcome.blocked.empty()) topics_blocked(outcome.blocked);
        if (!outcome.failing.empty()) topics_failing(outcome.failing);
        if (outcome.broker_failure) {
          broker_unavailable(*outcome.broker_failure);
          claim_now = true;
          continue;
        }
        broker_available();
        if (outcome.claimed >= config.outbox.batch_size && outcome.published > 0) {
          claim_now = true;  // a full batch: more is probably waiting
          continue;
        }
      } else {
        broker_available();
      }
      claim_now = wait_for_work();
    } catch (const pqxx::in_doubt_error& e) {
      spdlog::warn("commit outcome unknown ({}): rows not deleted will be published again", e.what());
      database_failed(e);
    } catch (const pqxx::failure& e) {
      database_failed(e);
    } catch (const store_error& e) {
      database_failed(e);
    } catch (const std::exception& e) {
      spdlog::error("relay loop: unexpected error: {}; reconnecting", e.what());
      database_failed(e);
    }
  }
  return shut_down();
}

bool service::impl::stopping() {
  if (!daemon.stop_requested()) return false;
  daemon.begin_stop(config.outbox.shutdown_timeout, "no new claims; finishing the batch in flight");
  return true;
}

void service::impl::housekeeping() {
  keep_sessions_alive();
  daemon.tick();
}

void service::impl::ping() {
  keep_sessions_alive();
  daemon.ping();
}

void service::impl::pause(std::chrono::milliseconds duration) {
  const auto until = clock_type::now() + duration;
  for (auto now = clock_type::now(); now < until && !stopping(); now = clock_type::now()) {
    housekeeping();
    daemon.signals().wait_for(std::min<std::chrono::milliseconds>(
        wait_slice, std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + 1ms));
  }
}

void service::impl::reload() {
  const auto fresh = load_config(config_path);  // throws: common::daemon logs it and keeps the running values
  common::set_log_level(fresh.log_level);
  config.log_level = fresh.log_level;
  config.outbox.batch_size = fresh.outbox.batch_size;
  config.outbox.poll_interval = fresh.outbox.poll_interval;
  spdlog::info(
      "configuration reloaded: log.level {}, outbox.batch_size {}, outbox.poll_interval {}ms (other keys "
      "take effect on restart)",
      config.log_level, config.outbox.batch_size, config.outbox.poll_interval.count());
}

std::string service::impl::status_text() const {
  std::string state = "ready";
  if (daemon.stop_deadline()) {
    state = "stopping";
  } else if (!ready) {
    state = "starting";
  } else if (!database_up) {
    state = "database unavailable";
  } else if (!broker_up) {
    state = "broker unavailable";
  }
  if (state == "ready" && !blocked.empty()) state = fmt::format("{} topic(s) blocked", blocked.size());
  return fmt::format("{}; {}/{} partitions; published {}, dead-lettered {}; backlog {} rows, oldest {:.1f}s", state,
                     leases.owned().size(), partition_count, published_total, dead_lettered_total,
                     pending_rows ? std::to_string(*pending_rows) : "?", oldest_age.value_or(0));
}

std::string service::impl::health_problem() const {
  if (!ready) return "starting: waiting for the database and the broker";
  if (!database_up) return "database unavailable";
  if (!broker_up) return "broker unavailable";
  const std::lock_guard lock(blocked_mutex);
  if (!blocked_summary.empty()) return "publishing blocked: " + blocked_summary;
  return {};
}

int service::impl::shut_down() {
  stopping();  // records the deadline and sends STOPPING=1 if the loop never saw the stop
  const auto left = std::max<std::chrono::milliseconds>(
      100ms, std::chrono::duration_cast<std::chrono::milliseconds>(*daemon.stop_deadline() - clock_type::now()));
  if (broker) {
    const auto undelivered = broker->close(left);
    if (undelivered > 0) {
      spdlog::warn(
          "{} messages were still queued in the producer at shutdown; their rows stay in the outbox and "
          "will be published again",
          undelivered);
    }
  }
  db.reset();  // closing the session releases the partition leases (and any row lock)
  if (http) http->stop();
  spdlog::info("relay stopped: published {}, dead-lettered {}", published_total, dead_lettered_total);
  return 0;
}

}  // namespace relay
