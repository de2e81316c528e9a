// outbox-relay against the real PostgreSQL, Kafka and Redis: what reaches the broker, in which
// order, and what happens to rows the broker refuses. Relays run as real processes.

#include <algorithm>
#include <csignal>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/redis.hpp"
#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::inserted_row;
using relay_itest::relay_process;
using test_support::consumed_message;
using test_support::wait_until;

using relay_itest::check_first_appearance_order;
using relay_itest::stop_gracefully;
using relay_itest::wait_drained;

}  // namespace

// Pins: a relay killed between publish and delete loses rows, or re-sends more than it had in flight.
TEST_CASE("relay crash: SIGKILLed at random moments while draining, every row still arrives",
          "[relay][integration][crash]") {
  relay_itest::relay_setup setup("relay_crash", 6);
  auto& [schema, db, topic] = setup;
  constexpr int batch_size = 500;
  // In a backlog the relay has up to two batches out at once: the one being deleted and committed,
  // and the next one, already sent (service.cpp, run_batches). A kill re-sends at most those.
  constexpr int in_flight_limit = 2 * batch_size;
  const std::map<std::string, std::string> env{{"RELAY_OUTBOX_BATCH_SIZE", std::to_string(batch_size)}};

  auto rows = relay_itest::insert_rows(db, topic, 20000);
  const auto seed = std::random_device{}();
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(0, 600);
  INFO("random seed " << seed);

  int kills = 0;
  std::vector<std::int64_t> backlog_after_kill;
  while (kills < 3) {
    if (relay_itest::pending_rows(db) == 0) {
      // The previous relay drained everything before its kill: top up, so that three kills land mid-drain.
      auto more =
          relay_itest::insert_rows(db, topic, 5000, "'k' || (i % 200)", static_cast<std::int64_t>(rows.size()) + 1);
      rows.insert(rows.end(), more.begin(), more.end());
    }
    const auto before = relay_itest::pending_rows(db);
    relay_process relay(schema, env);
    INFO("relay log: " << relay.log_path());
    REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) < before || !relay.running(); }, 60s, 5ms));
    REQUIRE(relay.running());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    relay.kill();
    const auto after = relay_itest::pending_rows(db);
    if (after > 0) {
      ++kills;
      backlog_after_kill.push_back(after);
    }
  }

  relay_process last(schema, env);
  INFO("relay log: " << last.log_path());
  REQUIRE(wait_drained(db, 120s));
  stop_gracefully(last);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  WARN(
      fmt::format("crash: {} rows, {} SIGKILLs (backlog after each: {}), {} messages, {} duplicate copies "
                  "(bound {} = kills x 2 batches)",
                  rows.size(), kills, fmt::join(backlog_after_kill, ", "), summary.messages, summary.duplicates,
                  kills * in_flight_limit));
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());
  CHECK(relay_itest::pending_rows(db) == 0);
  CHECK(summary.duplicates <= static_cast<std::size_t>(kills * in_flight_limit));
}

// Pins: SKIP LOCKED batching with several relays (or a takeover after a crash) reorders a key's events.
TEST_CASE("relay order: three relays, one SIGKILLed midway, keep every key's first appearances in id order",
          "[relay][integration][order]") {
  relay_itest::relay_setup setup("relay_order", 6);
  auto& [schema, db, topic] = setup;
  const auto rows = relay_itest::insert_rows(db, topic, 20000, "'k' || (i % 200)");
  const std::map<std::string, std::string> env{{"RELAY_OUTBOX_BATCH_SIZE", "500"}};

  std::vector<std::unique_ptr<relay_process>> relays;
  for (int i = 0; i < 3; ++i) relays.push_back(std::make_unique<relay_process>(schema, env));
  for (auto& relay : relays) {
    INFO("relay log: " << relay->log_path());
    REQUIRE(relay->wait_ready());
  }
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) <= 10000; }, 90s, 5ms));
  // Midway, at a random moment within about a batch's publish time.
  const auto seed = std::random_device{}();
  INFO("random seed " << seed);
  std::mt19937 random(seed);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 100)(random)));
  relays[1]->kill();
  const auto backlog_at_kill = relay_itest::pending_rows(db);

  REQUIRE(wait_drained(db, 120s));
  stop_gracefully(*relays[0]);
  stop_gracefully(*relays[2]);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());

  std::map<std::int64_t, std::optional<std::string>> key_of;
  for (const auto& row : rows) key_of[row.id] = row.key;
  std::size_t wrong_keys = 0;
  for (const auto& m : messages) {
    if (m.key != key_of[relay_itest::outbox_id(m)]) ++wrong_keys;
  }
  CHECK(wrong_keys == 0);

  const auto order = check_first_appearance_order(messages);
  WARN(fmt::format("order: {} messages for {} rows, {} duplicate copies, backlog at the kill {}", summary.messages,
                   rows.size(), summary.duplicates, backlog_at_kill));
  INFO(order.first_violation);
  CHECK(order.split_keys == 0);
  CHECK(order.violations == 0);
}

// Pins: an oversized record retried forever blocks everything behind it (no dead-letter state), or
// a later row of its key overtakes it (also one claimed ahead in the backlog pipeline). With
// dead_letter_blocks_key = false: later rows of its key flow once it is dead-lettered (the
// default, true, is relay_dead_letters_itest.cpp).
TEST_CASE(
    "relay poison row: a 2 MiB payload is dead-lettered after max_attempts, everything else flows (dead letters "
    "not blocking their key)",
    "[relay][integration][poison]") {
  // Broker append time: a record's timestamp then says when it reached the broker, whatever the relay sets.
  relay_itest::relay_setup setup("relay_poison", 6, {{"message.timestamp.type", "LogAppendTime"}});
  auto& [schema, db, topic] = setup;

  auto rows = relay_itest::insert_rows(db, topic, 300, "'k' || (i % 10)", 1);
  std::int64_t poison_id = 0;
  {
    pqxx::work tx(db);
    poison_id = tx.exec_params1(
                      "INSERT INTO outbox_messages (topic, key, payload) "
                      "VALUES ($1, 'k3', convert_to(repeat('x', 2097152), 'UTF8')) RETURNING id",
                      topic)[0]
                    .as<std::int64_t>();
    tx.commit();
  }
  const auto after_poison = relay_itest::insert_rows(db, topic, 300, "'k' || (i % 10)", 301);
  rows.insert(rows.end(), after_poison.begin(), after_poison.end());

  // Batches of 100: the poison row's batch is full, so the relay claims the next one (with later
  // rows of k3) while the poison row is being refused; that batch must go back unsent.
  relay_process relay(schema, {{"RELAY_OUTBOX_MAX_ATTEMPTS", "3"},
                               {"RELAY_OUTBOX_RETRY_BACKOFF", "100ms"},
                               {"RELAY_OUTBOX_BATCH_SIZE", "100"},
                               {"RELAY_OUTBOX_DEAD_LETTER_BLOCKS_KEY", "false"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(db) == 0 && relay_itest::dead_letter_rows(db) == 1; }, 60s,
                     100ms));

  std::int64_t dead_at_ms = 0;
  {
    pqxx::nontransaction tx(db);
    const auto dead = tx.exec1(
        "SELECT id, key, attempts, last_error, length(payload), "
        "       floor(extract(epoch FROM dead_at) * 1000)::bigint FROM outbox_dead_letters");
    CHECK(dead[0].as<std::int64_t>() == poison_id);
    CHECK(dead[1].as<std::string>() == "k3");
    CHECK(dead[2].as<int>() == 3);
    const auto last_error = dead[3].as<std::string>();
    INFO("last_error: " << last_error);
    CHECK(relay_itest::count_lines_containing(last_error, "size") > 0);
    CHECK(dead[4].as<std::int64_t>() == 2097152);
    dead_at_ms = dead[5].as<std::int64_t>();
  }

  const auto metrics = relay.http_get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(test_support::metric_value(metrics.body, "relay_dead_lettered_total").value_or(-1) == Approx(1.0));
  stop_gracefully(relay);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());  // the poison row never reached the topic
  // The poison row's batches were settled row by row (the fast path's claim rolled back): the rows
  // acknowledged with it were deleted then, not sent again.
  CHECK(summary.duplicates == 0);
  const auto order = check_first_appearance_order(messages);
  INFO(order.first_violation);
  CHECK(order.violations == 0);

  // Rows of the poison row's key behind it reached the broker only after it was dead-lettered.
  std::size_t later_same_key = 0;
  std::size_t early = 0;
  for (const auto& m : messages) {
    if (m.key != "k3" || relay_itest::outbox_id(m) < poison_id) continue;
    ++later_same_key;
    if (m.timestamp_ms < dead_at_ms) ++early;
  }
  CHECK(later_same_key >= 30);
  CHECK(early == 0);

  // An operator requeues it: back into outbox_messages, gone from the dead letters.
  test_support::child_process requeue(test_support::bin_path("walletctl"), {"dead-letters", "requeue", "--all"},
                                      {{"DATABASE_URL", schema.url()}}, test_support::new_log_path("walletctl"));
  const auto code = requeue.wait(30s);
  INFO("walletctl output: " << requeue.log());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  pqxx::nontransaction tx(db);
  CHECK(tx.exec1("SELECT count(*) FROM outbox_dead_letters")[0].as<int>() == 0);
  const auto back = tx.exec("SELECT key, length(payload), attempts FROM outbox_messages");
  REQUIRE(back.size() == 1);
  CHECK(back[0][0].as<std::string>() == "k3");
  CHECK(back[0][1].as<std::int64_t>() == 2097152);
}

// Pins: REDIS_MQ_TYPE=redis must drain the same outbox into a stream, ids intact.
TEST_CASE("relay redis: REDIS_MQ_TYPE=redis drains 5,000 rows into the stream", "[relay][integration][redis]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  const auto stream = test_support::unique_name("relay_stream");
  const auto rows = relay_itest::insert_rows(db, stream, 5000, "'k' || (i % 50)");

  common::redis::connection redis(common::redis::parse_url(test_support::require_env("REDIS_URL")), 5s);
  const test_support::redis_keys cleanup(redis, {stream});

  relay_process relay(schema, {{"REDIS_MQ_TYPE", "redis"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  CHECK(relay.log_contains("MQ Mode: Redis Stream"));
  // The test Redis runs without AOF: the relay says what that costs (README: Redis Streams durability).
  const auto appendonly = redis.command({"CONFIG", "GET", "appendonly"});
  if (appendonly.elements.size() == 2 && appendonly.elements[1].text == "no") {
    CHECK(relay.log_contains("Redis runs without AOF"));
  }
  REQUIRE(wait_drained(db, 60s));
  stop_gracefully(relay);

  const auto length = redis.command({"XLEN", stream});
  REQUIRE(length.type == common::redis::reply::kind::integer);
  CHECK(length.integer >= 5000);

  std::map<std::int64_t, int> copies;
  std::size_t bad_entries = 0;
  std::string first_bad;
  std::map<std::int64_t, std::optional<std::string>> key_of;
  for (const auto& row : rows) key_of[row.id] = row.key;
  for (const auto& entry : relay_itest::read_stream(redis, stream)) {
    const auto id = relay_itest::outbox_id(entry);
    ++copies[id];
    // Every entry carries the row: key, payload bytes and the headers object.
    const auto headers = entry.headers.find("headers");
    const bool ok = key_of.contains(id) && entry.key == key_of[id] && entry.payload.rfind("payload-", 0) == 0 &&
                    headers != entry.headers.end() &&
                    nlohmann::json::parse(headers->second, nullptr, false).contains("test-seq");
    if (!ok && bad_entries++ == 0) first_bad = fmt::format("entry {} of outbox id {}", entry.offset, id);
  }
  std::size_t missing = 0;
  for (const auto& row : rows) {
    if (!copies.contains(row.id)) ++missing;
  }
  INFO(first_bad);
  CHECK(missing == 0);
  CHECK(bad_entries == 0);
  CHECK(relay_itest::pending_rows(db) == 0);
}
