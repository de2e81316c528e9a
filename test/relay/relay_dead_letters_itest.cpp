// outbox-relay with outbox.dead_letter_blocks_key (the default): a dead letter holds back the later
// rows of its key until an operator requeues it (it then goes first) or discards it; walletctl shows
// the held keys. Real relay, PostgreSQL, Kafka and walletctl.

#include <algorithm>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::relay_process;
using test_support::wait_until;

std::int64_t insert_poison(pqxx::connection& db, const std::string& topic, const std::string& key) {
  pqxx::work tx(db);
  const auto id = tx.exec_params1(
                        "INSERT INTO outbox_messages (topic, key, payload) "
                        "VALUES ($1, $2, convert_to(repeat('x', 2097152), 'UTF8')) RETURNING id",
                        topic, key)[0]
                      .as<std::int64_t>();
  tx.commit();
  return id;
}

std::size_t rows_of_key_after(const std::vector<relay_itest::inserted_row>& rows, const std::string& key,
                              std::int64_t id) {
  return static_cast<std::size_t>(
      std::count_if(rows.begin(), rows.end(), [&](const auto& r) { return r.key == key && r.id > id; }));
}

}  // namespace

// Pins review finding #6: a dead letter released its key at once, and a requeued row was then
// published after later rows of its key.
TEST_CASE(
    "relay dead letters block their key: later rows wait, other keys flow, requeue goes first, discard "
    "releases, and walletctl shows it",
    "[relay][integration][poison][dead-letters]") {
  relay_itest::relay_setup t("relay_held_key", 6);
  auto rows = relay_itest::insert_rows(t.db, t.topic, 300, "'k' || (i % 10)", 1);
  const auto poison = insert_poison(t.db, t.topic, "k3");     // to be fixed and requeued
  const auto discarded = insert_poison(t.db, t.topic, "k5");  // to be discarded
  const auto after = relay_itest::insert_rows(t.db, t.topic, 300, "'k' || (i % 10)", 301);
  rows.insert(rows.end(), after.begin(), after.end());
  const auto held_k3 = rows_of_key_after(rows, "k3", poison);
  const auto held_k5 = rows_of_key_after(rows, "k5", discarded);
  REQUIRE(held_k3 == 30);
  REQUIRE(held_k5 == 30);

  relay_process relay(t.schema, {{"RELAY_OUTBOX_MAX_ATTEMPTS", "2"},
                                 {"RELAY_OUTBOX_RETRY_BACKOFF", "100ms"},
                                 {"RELAY_OUTBOX_BATCH_SIZE", "100"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());

  // Both poison rows dead-lettered; exactly the later rows of their keys wait; everything else went.
  REQUIRE(wait_until([&] { return relay_itest::dead_letter_rows(t.db) == 2; }, 60s, 100ms));
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(t.db) == static_cast<std::int64_t>(held_k3 + held_k5); },
                     30s, 100ms));
  {
    pqxx::nontransaction tx(t.db);
    CHECK(tx.exec1("SELECT count(*) FROM outbox_messages WHERE key NOT IN ('k3', 'k5')")[0].as<int>() == 0);
    CHECK(tx.exec1("SELECT count(*) FROM outbox_messages WHERE attempts > 0")[0].as<int>() == 0);
  }
  REQUIRE(wait_until([&] { return relay_itest::relay_metric(relay, "relay_held_keys").value_or(0) == 2; }, 30s, 200ms));
  CHECK(relay_itest::relay_metric(relay, "relay_oldest_held_key_age_seconds").value_or(-1) >= 0);

  const auto status = relay_itest::run_walletctl(t.schema, {"outbox", "status"});
  INFO("walletctl outbox status:\n" << status.output);
  REQUIRE(status.code == 0);
  CHECK_THAT(status.output, Catch::Contains("dead letters:  2"));
  CHECK_THAT(status.output, Catch::Contains("held keys:     2 (60 rows wait behind a dead letter of their key"));
  CHECK_THAT(status.output, Catch::Contains(fmt::format("pending:       {} rows", held_k3 + held_k5)));

  const auto list = relay_itest::run_walletctl(t.schema, {"dead-letters", "list"});
  INFO("walletctl dead-letters list:\n" << list.output);
  REQUIRE(list.code == 0);
  CHECK_THAT(list.output, Catch::Contains(std::to_string(poison)));
  CHECK_THAT(list.output, Catch::Contains(std::to_string(discarded)));
  CHECK(relay_itest::count_lines_containing(list.output, "size") == 2);  // last error: message too large

  // Discard k5's dead letter: recorded, and k5's later rows flow.
  const auto unknown = relay_itest::run_walletctl(t.schema, {"dead-letters", "discard", "999999999"});
  CHECK(unknown.code == 1);
  const auto discard = relay_itest::run_walletctl(t.schema, {"dead-letters", "discard", std::to_string(discarded)});
  INFO("walletctl dead-letters discard:\n" << discard.output);
  REQUIRE(discard.code == 0);
  CHECK_THAT(discard.output, Catch::Contains("discarded 1 dead letter(s) for good: " + std::to_string(discarded)));
  REQUIRE(
      wait_until([&] { return relay_itest::pending_rows(t.db) == static_cast<std::int64_t>(held_k3); }, 30s, 100ms));
  {
    pqxx::nontransaction tx(t.db);
    CHECK(tx.exec_params1("SELECT discarded_by = current_user FROM outbox_discarded_dead_letters WHERE id = $1",
                          discarded)[0]
              .as<bool>());
  }

  // The operator fixes k3's message and requeues it: it goes out before the rows that waited.
  {
    pqxx::work tx(t.db);
    tx.exec_params0("UPDATE outbox_dead_letters SET payload = convert_to('fixed', 'UTF8') WHERE id = $1", poison);
    tx.commit();
  }
  const auto requeue = relay_itest::run_walletctl(t.schema, {"dead-letters", "requeue", std::to_string(poison)});
  INFO("walletctl dead-letters requeue:\n" << requeue.output);
  REQUIRE(requeue.code == 0);
  REQUIRE(relay_itest::wait_drained(t.db, 60s));
  REQUIRE(
      wait_until([&] { return relay_itest::relay_metric(relay, "relay_held_keys").value_or(-1) == 0; }, 30s, 200ms));
  relay_itest::stop_gracefully(relay);

  rows.push_back({poison, std::string("k3")});
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  const auto messages = relay_itest::read_all(t.topic);
  const auto summary = relay_itest::summarize(messages, rows);
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());  // the discarded row never went out
  const auto order = relay_itest::check_first_appearance_order(messages);
  INFO(order.first_violation);
  CHECK(order.violations == 0);  // k3: the requeued row before every later k3 row
}
