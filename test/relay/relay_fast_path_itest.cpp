// The relay's fast path (store.hpp): one statement claims and deletes a batch, and the transaction
// commits only after the broker acknowledged every row. What happens to such a batch when the
// relay dies before the commit, and when the broker does not take every row of it.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "common/redis.hpp"
#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::relay_process;
using test_support::wait_until;

// A deferred trigger that makes every COMMIT deleting outbox rows wait for an advisory lock the
// test holds (`hold`): the relay's commit then sits after the broker's acknowledgements for as
// long as the test likes. Lock key: (hashtext(<schema> || ':test-hold'), 0).
void hold_commits(pqxx::connection& db) {
  pqxx::work tx(db);
  tx.exec0(R"(
CREATE FUNCTION test_hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(current_schema() || ':test-hold'), 0);
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER test_hold_commit AFTER DELETE ON outbox_messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit();
)");
  tx.commit();
}

void lock_hold(pqxx::connection& db, bool locked) {
  pqxx::nontransaction(db).exec1(fmt::format("SELECT {}(hashtext(current_schema() || ':test-hold'), 0)",
                                             locked ? "pg_advisory_lock" : "pg_advisory_unlock"));
}

std::int64_t stream_rows_pending(pqxx::connection& db, const std::string& stream) {
  return pqxx::nontransaction(db)
      .exec_params1("SELECT count(*) FROM outbox_messages WHERE topic = $1", stream)[0]
      .as<std::int64_t>();
}

}  // namespace

// Pins: a relay that dies after the broker acknowledged a batch but before the COMMIT that deletes
// it loses rows. The rows must come back and be sent again (a duplicate), never be lost.
TEST_CASE(
    "relay fast path: SIGKILL after the broker acknowledged a batch and before its commit re-sends it, loses "
    "nothing and keeps order",
    "[relay][integration][fast-path][crash]") {
  relay_itest::relay_setup setup("relay_fast_kill", 6);
  auto& [schema, db, topic] = setup;
  const auto rows = relay_itest::insert_rows(db, topic, 2000, "'k' || (i % 50)");
  hold_commits(db);
  auto holder = schema.connect();
  lock_hold(holder, true);

  auto relay =
      std::make_unique<relay_process>(schema, std::map<std::string, std::string>{{"RELAY_OUTBOX_BATCH_SIZE", "500"}});
  INFO("relay log: " << relay->log_path());
  REQUIRE(relay->wait_ready());
  const auto [main_backend, claims_backend] = relay_itest::relay_backends(*relay, db);
  REQUIRE(main_backend != 0);
  REQUIRE(claims_backend != 0);
  // The first batch is acknowledged (and the one claimed ahead is sent), its commit waits.
  REQUIRE(wait_until([&] { return relay_itest::topic_message_count(topic) >= 500; }, 60s, 20ms));
  CHECK(relay_itest::pending_rows(db) == 2000);  // nothing committed: the claim's deletes are not visible
  relay->kill();
  // The process is gone; its backends still wait in COMMIT. They end without committing (as when
  // the COMMIT never reached the server).
  {
    pqxx::nontransaction tx(db);
    tx.exec_params("SELECT pg_terminate_backend(p) FROM unnest(ARRAY[$1, $2]::integer[]) AS p", main_backend,
                   claims_backend);
  }
  REQUIRE(wait_until(
      [&] {
        return pqxx::nontransaction(db)
                   .exec_params1("SELECT count(*) FROM pg_stat_activity WHERE pid IN ($1, $2)", main_backend,
                                 claims_backend)[0]
                   .as<int>() == 0;
      },
      30s, 50ms));
  CHECK(relay_itest::pending_rows(db) == 2000);  // every row of both batches is back
  const auto published_before_restart = relay_itest::topic_message_count(topic);
  lock_hold(holder, false);
  pqxx::nontransaction(db).exec0("DROP TRIGGER test_hold_commit ON outbox_messages");

  relay = std::make_unique<relay_process>(schema);
  INFO("second relay log: " << relay->log_path());
  REQUIRE(relay_itest::wait_drained(db, 60s));
  relay_itest::stop_gracefully(*relay);

  const auto messages = relay_itest::read_all(topic);
  const auto summary = relay_itest::summarize(messages, rows);
  WARN(fmt::format("fast path kill: {} published before the kill, {} messages for {} rows, {} duplicate copies",
                   published_before_restart, summary.messages, rows.size(), summary.duplicates));
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());
  CHECK(summary.duplicates == static_cast<std::size_t>(published_before_restart));  // exactly what was sent
  const auto order = relay_itest::check_first_appearance_order(messages);
  INFO(order.first_violation);
  CHECK(order.violations == 0);
}

// Pins: a batch the broker did not take in full commits its deletes anyway (rows lost), or counts
// attempts for rows it never got, or re-sends what it acknowledged. Such a batch is rolled back and
// settled row by row: the acknowledged rows are deleted, the refused ones stay as they were, and
// once the stream takes entries again they arrive in order.
TEST_CASE(
    "relay fast path: a batch the broker refuses in part is rolled back and settled row by row, and the "
    "refused rows are sent again in order",
    "[relay][integration][fast-path][redis]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  const auto refused = test_support::unique_name("relay_refused");
  const auto flowing = test_support::unique_name("relay_flowing");
  common::redis::connection redis(common::redis::parse_url(test_support::require_env("REDIS_URL")), 5s);
  const test_support::redis_keys cleanup(redis, {refused, flowing});
  // A string under the stream's name: XADD answers WRONGTYPE, a refusal of the whole stream.
  redis.command({"SET", refused, "not a stream"});

  // Interleaved, so that every batch holds rows of both streams.
  std::vector<relay_itest::inserted_row> refused_rows;
  std::vector<relay_itest::inserted_row> flowing_rows;
  for (int round = 0; round < 3; ++round) {
    auto a = relay_itest::insert_rows(db, refused, 100, "'k' || (i % 10)", 1 + round * 100);
    auto b = relay_itest::insert_rows(db, flowing, 100, "'k' || (i % 10)", 1 + round * 100);
    refused_rows.insert(refused_rows.end(), a.begin(), a.end());
    flowing_rows.insert(flowing_rows.end(), b.begin(), b.end());
  }

  relay_process relay(schema, {{"REDIS_MQ_TYPE", "redis"}, {"RELAY_OUTBOX_BATCH_SIZE", "100"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  REQUIRE(wait_until([&] { return stream_rows_pending(db, flowing) == 0; }, 60s, 50ms));
  {
    // The refused rows are all there, as inserted: no attempt counted, no dead letter.
    pqxx::nontransaction tx(db);
    const auto row = tx.exec_params1(
        "SELECT count(*), coalesce(max(attempts), 0), count(last_error) FROM outbox_messages WHERE topic = $1",
        refused);
    CHECK(row[0].as<std::int64_t>() == static_cast<std::int64_t>(refused_rows.size()));
    CHECK(row[1].as<int>() == 0);
    CHECK(row[2].as<int>() == 0);
  }
  CHECK(relay_itest::dead_letter_rows(db) == 0);
  CHECK(relay_itest::relay_metric(relay,
                                  fmt::format("relay_publish_blocked{{reason=\"wrongtype\",topic=\"{}\"}}", refused))
            .value_or(0) == Approx(1.0));

  redis.command({"DEL", refused});  // the operator fixes the stream
  REQUIRE(relay_itest::wait_drained(db, 60s));
  relay_itest::stop_gracefully(relay);

  for (const auto& [stream, expected] : {std::pair{refused, refused_rows}, std::pair{flowing, flowing_rows}}) {
    const auto entries = relay_itest::read_stream(redis, stream);
    const auto summary = relay_itest::summarize(entries, expected);
    const auto order = relay_itest::check_first_appearance_order(entries);
    INFO(stream << ": " << order.first_violation);
    CHECK(summary.missing.empty());
    CHECK(summary.unexpected.empty());
    CHECK(summary.duplicates == 0);  // acknowledged rows of a settled batch are not sent again
    CHECK(order.violations == 0);
  }
}
