// The relay's connectivity states: database up/down (a new store after any failure), broker
// up/down (stepping aside: leases released while this relay cannot publish), and keeping the
// database sessions alive within the freeze bound (outbox.lease_timeout).

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>

#include "common/database.hpp"
#include "relay/service_impl.hpp"

namespace relay {

using namespace std::chrono_literals;

namespace {
constexpr auto max_probe_timeout = 2s;
}  // namespace

bool service::impl::connect_database() {
  try {
    db = std::make_unique<store>(config.database, session_settings_for(config.outbox));
  } catch (const std::exception& e) {
    database_failed(e);
    return false;
  }
  leases.reset();
  standby = false;
  metrics.partitions_owned(0);
  next_lease_refresh = clock_type::now();
  next_keep_alive = clock_type::now() + config.outbox.lease_timeout / 5;
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
  forget_failing_topics();  // a batch went through: what failed for lack of an answer is over
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
  if (const auto watchdog = daemon.watchdog_interval()) {
    timeout = std::min(timeout, std::max<std::chrono::milliseconds>(100ms, *watchdog));
  }
  return broker->reachable(timeout);
}

// A failure here is not handled here: the session's next real statement fails the same way
// (with a batch open this runs from inside collect(), where the store cannot be dropped).
void service::impl::keep_sessions_alive() {
  if (!db) return;
  const auto now = clock_type::now();
  if (now < next_keep_alive) return;
  next_keep_alive = now + config.outbox.lease_timeout / 5;
  try {
    db->keep_alive();
  } catch (const std::exception& e) {
    spdlog::debug("database keep-alive failed: {}", e.what());
  }
}

}  // namespace relay
