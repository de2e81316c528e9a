#include "relay/service.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <system_error>

#include <fmt/format.h>
#include <pqxx/except>
#include <spdlog/spdlog.h>

#include "common/backoff.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/systemd.hpp"
#include "relay/leases.hpp"
#include "relay/metrics.hpp"
#include "relay/publisher.hpp"
#include "relay/store.hpp"

namespace relay {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// Longest uninterrupted sleep: bounds how late a stop, a reload or a watchdog ping can be.
constexpr auto wait_slice = 200ms;
constexpr auto gauge_interval = 5s;
constexpr auto status_interval = 1s;
constexpr auto max_probe_timeout = 2s;

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

struct batch_outcome {
  std::size_t claimed = 0;    // rows of the last batch
  std::size_t published = 0;  // rows acknowledged, all batches
  std::optional<std::string> broker_failure;  // a row failed for a reason that is not its own
};

// A batch handed to the broker whose acknowledgements are awaited.
struct sent_batch {
  claimed_batch batch;
  clock_type::time_point claim_started;
  clock_type::time_point claimed_at;  // the claim returned: rows' age_seconds are as of about then
  clock_type::time_point sent_at;
  clock_type::time_point deadline;
  clock_type::duration waited{};  // in collect(): what claiming ahead did not cover
};

}  // namespace

struct service::impl {
  impl(relay_config c, std::filesystem::path path, common::process_signals& s)
      : config(std::move(c)),
        config_path(std::move(path)),
        signals(s),
        database_backoff(config.outbox.broker_backoff, config.outbox.broker_backoff_max),
        broker_backoff(config.outbox.broker_backoff, config.outbox.broker_backoff_max),
        row_backoff(config.outbox.retry_backoff, config.outbox.retry_backoff_max),
        watchdog_interval(common::systemd::watchdog_ping_interval()),
        reload_generation(s.reload_generation()) {}

  int run();

  // --- state changes (each logs once) ---
  bool connect_database();
  void database_failed(const std::exception& error);
  void broker_unavailable(const std::string& reason);
  void broker_available();
  bool probe_broker();
  void step_aside();
  void step_back_in();

  // --- the work ---
  void refresh_from_heartbeat(bool& claim_now);
  batch_outcome run_batches();
  sent_batch send(claimed_batch batch, clock_type::time_point claim_started, clock_type::time_point claimed_at);
  bool may_claim_ahead();
  void finish(sent_batch& sent, const std::vector<delivery_result>& results, batch_outcome& outcome);
  void handle_rejection(claimed_batch& batch, const outbox_row& row, const delivery_result& result,
                        std::size_t& dead_lettered);
  bool wait_for_work();
  bool keep_waiting();

  // --- process plumbing ---
  bool stopping();
  void housekeeping();
  void ping();
  void pause(std::chrono::milliseconds duration);
  void reload();
  std::string status_text() const;
  std::string health_problem() const;
  int shut_down();

  relay_config config;
  std::filesystem::path config_path;
  common::process_signals& signals;
  relay_metrics metrics;
  std::unique_ptr<publisher> broker;
  std::unique_ptr<common::http::server> http;
  std::unique_ptr<store> db;
  lease_set leases;
  common::backoff database_backoff;
  common::backoff broker_backoff;
  common::backoff row_backoff;

  // Read by the HTTP thread (/healthz).
  std::atomic<bool> ready{false};
  std::atomic<bool> database_up{false};
  std::atomic<bool> broker_up{false};
  bool standby = false;  // leases released and session renamed while the broker is unreachable

  std::optional<clock_type::time_point> database_down_since;
  std::optional<clock_type::time_point> broker_down_since;
  std::optional<clock_type::time_point> stop_deadline;
  std::optional<clock_type::time_point> retry_due;  // earliest next attempt of a rejected row
  std::optional<std::chrono::milliseconds> watchdog_interval;
  std::uint64_t reload_generation;
  clock_type::time_point next_lease_refresh{};
  clock_type::time_point next_gauges{};
  clock_type::time_point next_status{};
  clock_type::time_point next_watchdog{};

  std::uint64_t published_total = 0;
  std::uint64_t dead_lettered_total = 0;
  std::optional<std::int64_t> pending_rows;
  std::optional<double> oldest_age;
};

service::service(relay_config config, std::filesystem::path config_path, common::process_signals& signals)
    : impl_(std::make_unique<impl>(std::move(config), std::move(config_path), signals)) {}
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

  common::http::server_config http_config;
  http_config.bind_address = config.http.listen;
  http_config.port = config.http.port;
  http_config.threads = 1;
  http = std::make_unique<common::http::server>(
      http_config, common::operations_handler(metrics.registry(), [this] { return health_problem(); }));
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
        broker_unavailable(config.mq == mq_type::kafka ? "no Kafka broker answered at " + config.kafka.bootstrap_servers
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
    common::systemd::notify_ready();
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

bool service::impl::connect_database() {
  try {
    const auto transaction_limit = config.outbox.delivery_timeout + config.outbox.shutdown_timeout + 30s;
    db = std::make_unique<store>(config.database, transaction_limit, config.outbox.synchronous_commit);
  } catch (const std::exception& e) {
    database_failed(e);
    return false;
  }
  leases.reset();
  standby = false;
  metrics.partitions_owned(0);
  next_lease_refresh = clock_type::now();
  database_up = true;
  metrics.database_up(true);
  database_backoff.reset();
  if (database_down_since) {
    spdlog::info("database recovered after {:.1f}s: connected as {}", seconds(clock_type::now() - *database_down_since),
                 db->application_name());
    database_down_since.reset();
  } else {
    spdlog::info("database connected: {} (schema {}, session {})", common::redacted_url(config.database.url),
                 db->schema(), db->application_name());
  }
  return true;
}

void service::impl::database_failed(const std::exception& error) {
  // The session is gone or unusable: its leases and row locks go with it (closing it makes sure).
  db.reset();
  leases.reset();
  metrics.partitions_owned(0);
  metrics.database_up(false);
  database_up = false;
  if (!database_down_since) {
    database_down_since = clock_type::now();
    std::string_view what = error.what();
    while (!what.empty() && std::isspace(static_cast<unsigned char>(what.back()))) what.remove_suffix(1);
    spdlog::warn("database unavailable: {}; retrying with backoff (partition leases dropped)", what);
  } else {
    spdlog::debug("database still unavailable: {}", error.what());
  }
}

void service::impl::broker_unavailable(const std::string& reason) {
  if (!broker_down_since) {
    broker_down_since = clock_type::now();
    spdlog::warn("broker unavailable: {}; rows stay in the outbox, retrying with backoff", reason);
  } else {
    spdlog::debug("broker still unavailable: {}", reason);
  }
  broker_up = false;
  metrics.broker_up(false);
}

void service::impl::broker_available() {
  if (broker_up) return;
  broker_up = true;
  metrics.broker_up(true);
  broker_backoff.reset();
  if (broker_down_since) {
    spdlog::info("broker recovered after {:.1f}s: publishing again", seconds(clock_type::now() - *broker_down_since));
    broker_down_since.reset();
  }
}

// Between batches only. Relays that can still publish take over our partitions meanwhile; the
// order of a key survives the hand-over like any other (nothing of ours is in flight).
void service::impl::step_aside() {
  if (standby) return;
  leases.release_all(*db);
  metrics.partitions_owned(0);
  db->set_standby(true);
  standby = true;
}

void service::impl::step_back_in() {
  if (!standby) return;
  db->set_standby(false);
  standby = false;
  next_lease_refresh = clock_type::now();
}

bool service::impl::probe_broker() {
  auto timeout = std::chrono::milliseconds(max_probe_timeout);
  if (watchdog_interval) timeout = std::min(timeout, std::max<std::chrono::milliseconds>(100ms, *watchdog_interval));
  return broker->reachable(timeout);
}

void service::impl::refresh_from_heartbeat(bool& claim_now) {
  const auto now = clock_type::now();
  const bool lease_due = now >= next_lease_refresh;
  const bool gauges_due = now >= next_gauges;
  // An idle wake-up (no NOTIFY) asks "is there work?" in the same statement as the rest, so an
  // idle relay costs the database about one query per poll interval.
  if (claim_now && !lease_due && !gauges_due) return;
  const auto beat = db->beat(leases.owned(), gauges_due);
  oldest_age = beat.oldest_age_seconds;
  metrics.oldest_age(beat.oldest_age_seconds.value_or(0));
  if (beat.pending_rows) {
    pending_rows = beat.pending_rows;
    metrics.pending_rows(*beat.pending_rows);
    next_gauges = now + gauge_interval;
  }
  bool leases_changed = false;
  if (lease_due) {
    leases_changed = leases.rebalance(*db, beat.live_relays);
    metrics.partitions_owned(leases.owned().size());
    next_lease_refresh = now + config.outbox.lease_refresh;
  }
  claim_now = claim_now || beat.has_work || leases_changed;
}

// Claim → publish → delete, once, or as a pipeline while batches come back full: the next batch
// is claimed (on the store's second session; SKIP LOCKED passes over the rows in flight) while the
// broker acknowledges the current one, and it is sent as soon as the current one's outcome is
// known, so that deleting and committing the current batch overlaps publishing the next. The next
// batch goes out only when every row of the current one was acknowledged; otherwise it is rolled
// back unsent (its rows are claimed again after this batch committed), so that no row overtakes an
// earlier row of its key that stays in the table. The pipeline also pauses for every heartbeat and
// lease change, and a stop: those need the main session free and no claim of ours open.
batch_outcome service::impl::run_batches() {
  batch_outcome outcome;
  const auto started = clock_type::now();
  auto first = db->claim(leases.owned(), config.outbox.batch_size);
  outcome.claimed = first.rows().size();
  if (first.rows().empty()) {
    first.commit();
    return outcome;
  }
  std::optional<sent_batch> current = send(std::move(first), started, clock_type::now());
  while (current) {
    std::optional<claimed_batch> next;
    clock_type::time_point next_claim_started{};
    clock_type::time_point next_claimed_at{};
    if (current->batch.rows().size() >= config.outbox.batch_size && may_claim_ahead()) {
      next_claim_started = clock_type::now();
      next.emplace(db->claim(leases.owned(), config.outbox.batch_size));
      next_claimed_at = clock_type::now();
    }
    const auto collect_started = clock_type::now();
    const auto results = broker->collect(current->deadline, [this] { return keep_waiting(); });
    current->waited = clock_type::now() - collect_started;
    const bool all_acknowledged = std::all_of(results.begin(), results.end(), [](const delivery_result& r) {
      return r.status == delivery_status::persisted;
    });
    std::optional<sent_batch> following;
    if (next) {
      outcome.claimed = next->rows().size();
      if (all_acknowledged && !next->rows().empty() && !stopping()) {
        following = send(std::move(*next), next_claim_started, next_claimed_at);
      } else {
        next->roll_back();
      }
    }
    finish(*current, results, outcome);
    current = std::move(following);
  }
  return outcome;
}

sent_batch service::impl::send(claimed_batch batch, clock_type::time_point claim_started,
                               clock_type::time_point claimed_at) {
  metrics.batch(batch.rows().size());
  const auto now = clock_type::now();
  const auto deadline = now + config.outbox.delivery_timeout;
  broker->send(batch.rows(), deadline, [this] { return keep_waiting(); });
  return {std::move(batch), claim_started, claimed_at, now, deadline};
}

bool service::impl::may_claim_ahead() {
  const auto now = clock_type::now();
  return !stopping() && broker_up && now < next_lease_refresh && now < next_gauges &&
         signals.reload_generation() == reload_generation;
}

void service::impl::finish(sent_batch& sent, const std::vector<delivery_result>& results, batch_outcome& outcome) {
  const auto& rows = sent.batch.rows();
  std::vector<std::int64_t> acknowledged;
  acknowledged.reserve(rows.size());
  std::size_t dead_lettered = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto& result = results[i];
    switch (result.status) {
      case delivery_status::persisted:
        acknowledged.push_back(row.id);
        metrics.published(row.topic, row.age_seconds + seconds(result.at - sent.claimed_at));
        break;
      case delivery_status::rejected:
        metrics.publish_error(result.reason);
        handle_rejection(sent.batch, row, result, dead_lettered);
        break;
      case delivery_status::failed:
        metrics.publish_error(result.reason);
        if (!outcome.broker_failure) outcome.broker_failure = result.error;
        break;
      case delivery_status::held_back:
        break;
    }
  }
  const auto acknowledged_at = clock_type::now();
  sent.batch.remove(acknowledged);
  sent.batch.commit();
  spdlog::debug("batch of {}: claimed in {:.1f}ms, acknowledged {:.1f}ms after sending ({:.1f}ms of it waited "
                "for), deleted and committed in {:.1f}ms",
                rows.size(), 1000 * seconds(sent.claimed_at - sent.claim_started),
                1000 * seconds(acknowledged_at - sent.sent_at), 1000 * seconds(sent.waited),
                1000 * seconds(clock_type::now() - acknowledged_at));
  outcome.published += acknowledged.size();
  published_total += acknowledged.size();
  dead_lettered_total += dead_lettered;
  for (std::size_t i = 0; i < dead_lettered; ++i) metrics.dead_lettered();
  if (outcome.broker_failure && !acknowledged.empty()) {
    spdlog::debug("batch of {}: {} acknowledged, the rest stays: {}", rows.size(), acknowledged.size(),
                  *outcome.broker_failure);
  }
}

void service::impl::handle_rejection(claimed_batch& batch, const outbox_row& row, const delivery_result& result,
                                     std::size_t& dead_lettered) {
  const int attempts = row.attempts + 1;
  const std::string key = row.key ? *row.key : "(none)";
  if (attempts >= config.outbox.max_attempts) {
    batch.dead_letter(row, result.error);
    ++dead_lettered;
    spdlog::error("outbox row {} (topic {}, key {}) moved to outbox_dead_letters after {} attempts: {} "
                  "(`walletctl dead-letters requeue {}` puts it back)",
                  row.id, row.topic, key, attempts, result.error, row.id);
    return;
  }
  const auto retry_in = row_backoff.delay_for(static_cast<unsigned>(row.attempts));
  batch.reject(row, result.error, retry_in);
  const auto due = clock_type::now() + retry_in + 20ms;  // the database's clock set next_attempt_at
  if (!retry_due || due < *retry_due) retry_due = due;
  spdlog::warn("outbox row {} (topic {}, key {}) rejected by the broker, attempt {} of {}: {}; next attempt in {}ms "
               "(later rows of its key wait)",
               row.id, row.topic, key, attempts, config.outbox.max_attempts, result.error, retry_in.count());
}

bool service::impl::wait_for_work() {
  // Wake for a rejected row's retry when it comes before the next poll.
  auto deadline = clock_type::now() + config.outbox.poll_interval;
  if (retry_due) deadline = std::min(deadline, *std::exchange(retry_due, std::nullopt));
  while (!stopping()) {
    housekeeping();
    if (auto problem = broker->connectivity_problem()) {
      broker_unavailable(*problem);
      return false;
    }
    const auto now = clock_type::now();
    if (now >= deadline) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (db->await_notification(std::min<std::chrono::milliseconds>(left, wait_slice))) return true;
  }
  return false;
}

bool service::impl::keep_waiting() {
  ping();
  if (auto problem = broker->connectivity_problem()) broker_unavailable(*problem);
  if (!stopping()) return true;
  return clock_type::now() < *stop_deadline;
}

bool service::impl::stopping() {
  if (!signals.stop_requested()) return false;
  if (!stop_deadline) {
    stop_deadline = clock_type::now() + config.outbox.shutdown_timeout;
    common::systemd::notify_stopping();
    spdlog::info("stopping: no new claims; finishing the batch in flight within {}ms",
                 config.outbox.shutdown_timeout.count());
  }
  return true;
}

void service::impl::housekeeping() {
  if (signals.reload_generation() != reload_generation) {
    reload_generation = signals.reload_generation();
    reload();
  }
  ping();
}

void service::impl::ping() {
  const auto now = clock_type::now();
  if (watchdog_interval && now >= next_watchdog) {
    common::systemd::notify_watchdog();
    next_watchdog = now + *watchdog_interval;
  }
  if (now >= next_status) {
    common::systemd::notify_status(status_text());
    next_status = now + status_interval;
  }
}

void service::impl::pause(std::chrono::milliseconds duration) {
  const auto until = clock_type::now() + duration;
  for (auto now = clock_type::now(); now < until && !stopping(); now = clock_type::now()) {
    housekeeping();
    signals.wait_for(std::min<std::chrono::milliseconds>(
        wait_slice, std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + 1ms));
  }
}

void service::impl::reload() {
  if (ready) common::systemd::notify_reloading();
  try {
    const auto fresh = load_config(config_path);
    common::set_log_level(fresh.log_level);
    config.log_level = fresh.log_level;
    config.outbox.batch_size = fresh.outbox.batch_size;
    config.outbox.poll_interval = fresh.outbox.poll_interval;
    spdlog::info("configuration reloaded: log.level {}, outbox.batch_size {}, outbox.poll_interval {}ms (other keys "
                 "take effect on restart)",
                 config.log_level, config.outbox.batch_size, config.outbox.poll_interval.count());
  } catch (const std::exception& e) {
    spdlog::error("configuration reload failed, keeping the running values: {}", e.what());
  }
  if (ready) common::systemd::notify_ready();
}

std::string service::impl::status_text() const {
  std::string state = "ready";
  if (stop_deadline) {
    state = "stopping";
  } else if (!ready) {
    state = "starting";
  } else if (!database_up) {
    state = "database unavailable";
  } else if (!broker_up) {
    state = "broker unavailable";
  }
  return fmt::format("{}; {}/{} partitions; published {}, dead-lettered {}; backlog {} rows, oldest {:.1f}s", state,
                     leases.owned().size(), partition_count, published_total, dead_lettered_total,
                     pending_rows ? std::to_string(*pending_rows) : "?", oldest_age.value_or(0));
}

std::string service::impl::health_problem() const {
  if (!ready) return "starting: waiting for the database and the broker";
  if (!database_up) return "database unavailable";
  if (!broker_up) return "broker unavailable";
  return {};
}

int service::impl::shut_down() {
  stopping();  // records the deadline and sends STOPPING=1 if the loop never saw the stop
  const auto left = std::max<std::chrono::milliseconds>(
      100ms, std::chrono::duration_cast<std::chrono::milliseconds>(*stop_deadline - clock_type::now()));
  if (broker) {
    const auto undelivered = broker->close(left);
    if (undelivered > 0) {
      spdlog::warn("{} messages were still queued in the producer at shutdown; their rows stay in the outbox and "
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
