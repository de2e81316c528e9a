// outbox-relay when things go wrong around it: the broker disappears mid-drain, an operator stops it.

#include <atomic>
#include <csignal>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::inserted_row;
using relay_itest::relay_process;
using test_support::wait_until;

}  // namespace

// Pins: a relay that dies, loses rows or needs a restart when Kafka goes away, or floods its log
// with one line per retry while the broker is down.
TEST_CASE("relay broker outage: Kafka stopped for 20 s mid-drain, the same relay recovers and loses nothing",
          "[relay][integration][outage]") {
  relay_itest::relay_setup setup("relay_outage", 6);
  auto& [schema, db, topic] = setup;
  auto rows = relay_itest::insert_rows(db, topic, 20000);

  relay_process relay(schema, {{"RELAY_OUTBOX_BATCH_SIZE", "500"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  const int pid = relay.pid();
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) < 20000; }, 60s, 5ms));

  // Rows keep arriving while the broker is away, so the relay is draining during the whole outage
  // however fast it emptied the initial backlog.
  std::atomic<bool> inserting{true};
  std::vector<inserted_row> inserted_meanwhile;
  std::string inserter_error;
  std::thread inserter([&] {
    try {
      auto writer = schema.connect();
      std::int64_t seq = 1'000'000;
      while (inserting) {
        auto more = relay_itest::insert_rows(writer, topic, 100, "'k' || (i % 200)", seq);
        seq += 100;
        inserted_meanwhile.insert(inserted_meanwhile.end(), more.begin(), more.end());
        std::this_thread::sleep_for(250ms);
      }
    } catch (const std::exception& e) {
      inserter_error = e.what();
    }
  });
  struct join_guard {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~join_guard() {
      flag = false;
      if (thread.joinable()) thread.join();
    }
  } join{inserting, inserter};

  std::int64_t backlog_during_outage = 0;
  {
    relay_itest::kafka_outage outage;
    const auto down_since = std::chrono::steady_clock::now();
    std::this_thread::sleep_until(down_since + 20s);
    backlog_during_outage = relay_itest::pending_rows(db);
    CHECK(relay.running());
    outage.end();
  }
  std::this_thread::sleep_for(1s);  // a few more rows after the broker is back
  inserting = false;
  inserter.join();
  REQUIRE(inserter_error.empty());
  rows.insert(rows.end(), inserted_meanwhile.begin(), inserted_meanwhile.end());

  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) == 0; }, 120s, 200ms));
  CHECK(relay.running());
  CHECK(relay.pid() == pid);
  CHECK(backlog_during_outage > 0);  // rows stayed while nothing could be published

  const auto log = relay.log();
  const auto unavailable_lines = relay_itest::count_lines_containing(log, "broker unavailable");
  const auto recovered_lines = relay_itest::count_lines_containing(log, "broker recovered");
  WARN(
      fmt::format("outage: {} rows, backlog {} at the end of the 20 s outage, {} \"unavailable\" and {} "
                  "\"recovered\" log lines",
                  rows.size(), backlog_during_outage, unavailable_lines, recovered_lines));
  // One line per state change, not one per retry.
  CHECK(unavailable_lines >= 1);
  CHECK(unavailable_lines <= 3);
  CHECK(recovered_lines >= 1);

  relay.signal(SIGTERM);
  const auto code = relay.wait(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  WARN(fmt::format("outage: {} messages, {} duplicate copies", summary.messages, summary.duplicates));
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());
}

// Pins: a stop that leaves locks behind, re-sends a whole batch on restart, hangs past
// shutdown_timeout, or deletes rows it did not publish.
TEST_CASE("relay graceful stop: SIGTERM mid-drain exits 0, leaves no locks, a restart drains the rest",
          "[relay][integration][shutdown]") {
  relay_itest::relay_setup setup("relay_stop", 6);
  auto& [schema, db, topic] = setup;
  const auto rows = relay_itest::insert_rows(db, topic, 20000);
  const std::map<std::string, std::string> env{{"RELAY_OUTBOX_BATCH_SIZE", "500"},
                                               {"RELAY_OUTBOX_SHUTDOWN_TIMEOUT", "10s"}};

  relay_process relay(schema, env);
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) < 20000; }, 60s, 5ms));
  const auto backends = test_support::database_backends(relay.pid(), db);
  relay.signal(SIGTERM);
  const auto code = relay.wait(15s);  // shutdown_timeout 10 s plus process start-up slack
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  // Its sessions are gone and hold nothing: no row locks, no advisory locks.
  INFO("backends of the relay: " << backends.size());
  CHECK_FALSE(backends.empty());
  std::string backend_array = "{";
  for (std::size_t i = 0; i < backends.size(); ++i) backend_array += (i > 0 ? "," : "") + std::to_string(backends[i]);
  backend_array += "}";
  CHECK(wait_until(
      [&] {
        pqxx::nontransaction tx(db);
        return tx.exec_params1("SELECT count(*) FROM pg_locks WHERE pid = ANY($1::int[])", backend_array)[0]
                   .as<int>() == 0;
      },
      5s));
  {
    pqxx::nontransaction tx(db);
    CHECK(tx.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                   "(SELECT oid FROM pg_database WHERE datname = current_database()) AND pid = ANY('" +
                   backend_array + "'::int[])")[0]
              .as<int>() == 0);
  }
  {
    pqxx::work tx(db);
    // Every remaining row can be locked at once: nobody holds a row lock on any of them.
    CHECK_NOTHROW(tx.exec("SELECT id FROM outbox_messages FOR UPDATE NOWAIT"));
  }

  // Nothing lost, nothing both published and still pending (that would be re-sent by the next relay).
  const auto remaining = relay_itest::pending_ids(db);
  const auto published = relay_itest::read_all(topic);
  std::set<std::int64_t> published_ids;
  for (const auto& m : published) published_ids.insert(relay_itest::outbox_id(m));
  std::size_t lost = 0;
  std::size_t published_and_pending = 0;
  for (const auto& row : rows) {
    const bool pending = remaining.contains(row.id);
    if (!pending && !published_ids.contains(row.id)) ++lost;
    if (pending && published_ids.contains(row.id)) ++published_and_pending;
  }
  WARN(fmt::format("graceful stop: {} rows published, {} still pending after SIGTERM", published_ids.size(),
                   remaining.size()));
  CHECK(lost == 0);
  CHECK(published_and_pending == 0);
  CHECK(remaining.size() > 0);  // the stop came mid-drain

  relay_process restarted(schema, env);
  INFO("restarted relay log: " << restarted.log_path());
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) == 0; }, 90s, 100ms));
  restarted.signal(SIGTERM);
  const auto restart_code = restarted.wait(15s);
  REQUIRE(restart_code.has_value());
  CHECK(*restart_code == 0);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  WARN(fmt::format("graceful stop: {} messages in the end, {} duplicate copies", summary.messages, summary.duplicates));
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());
  CHECK(summary.duplicates == 0);
}
