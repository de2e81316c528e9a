// broadcaster-worker's inputs: Redis Streams through outbox-relay, bad events to the DLQ, and a
// withdrawal the node refuses (then cancelled). Real Kafka, Redis, PostgreSQL and anvil; the test
// world is test_bed.hpp's.

#include <signal.h>

#include <algorithm>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"
#include "common/redis.hpp"
#include "ledger.hpp"
#include "test_bed.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;
using test_support::wait_until;

namespace {

common::redis::connection redis_connection() {
  return common::redis::connection(common::redis::parse_url(test_support::require_env("REDIS_URL")), 5s);
}

bool redis_group_exists(common::redis::connection& redis, const std::string& stream, const std::string& group) {
  const auto reply = redis.command({"XINFO", "GROUPS", stream});
  if (reply.type != common::redis::reply::kind::array) return false;
  for (const auto& g : reply.elements) {
    // RESP2: each group is a flat array name, <name>, consumers, <n>, ...
    for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      if (g.elements[i].text == "name" && g.elements[i + 1].text == group) return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("broadcaster: Redis Streams through outbox-relay confirm each withdrawal with one transaction",
          "[broadcaster][redis]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  auto node = connect_node();
  const auto wallet = funded_hot_wallet(*node, to_wei("1"));
  const auto first_nonce = node->get_transaction_count(wallet.address, "pending");
  const auto stream = unique_name("bcast_stream");
  const auto dlq = stream + "_dlq";
  const auto group = stream + "_group";
  auto redis = redis_connection();
  const test_support::redis_keys drop_streams(redis, {stream, dlq});

  auto worker = start_worker({&schema, &wallet, stream, group, dlq, "redis", {}});
  REQUIRE(wait_until([&] { return redis_group_exists(redis, stream, group); }, 30s, 50ms));

  // What wallet-service commits: debit + pending withdrawal + outbox row, in one transaction.
  create_account(db, 1, "10");
  create_account(db, 2, "10");
  std::vector<std::int64_t> ids;
  for (int i = 1; i <= 8; ++i) {
    pqxx::work tx(db);
    const new_withdrawal w{1 + i % 2, random_address(), amount_for(i)};
    const auto id = insert_pending_withdrawal(tx, w);
    insert_outbox_event(tx, stream, w.user_id, event_payload(id, w.user_id, w.to.to_checksum_string(), w.amount));
    tx.commit();
    ids.push_back(id);
  }

  daemon_process relay("outbox-relay", "relay",
                       {{"DATABASE_URL", schema.url()},
                        {"REDIS_MQ_TYPE", "redis"},
                        {"REDIS_URL", test_support::require_env("REDIS_URL")},
                        {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
                        {"RELAY_HTTP_PORT", "0"},
                        {"RELAY_LOG_LEVEL", "info"}},
                       "relay-redis");

  const bool all_confirmed = wait_all_status(db, ids, "confirmed", 90s);
  const auto rows = load_withdrawals(db, ids);
  INFO("withdrawals:\n" << describe(rows) << "worker log " << worker->log_path() << " relay log " << relay.log_path());
  REQUIRE(all_confirmed);
  check_paid_exactly_once(*node, rows, wallet.address);
  check_contiguous_nonces(rows, first_nonce);
  CHECK(node->get_transaction_count(wallet.address, "latest") == first_nonce + ids.size());
  const auto got = received_ids(worker->log());
  for (const auto id : ids) CHECK(got.contains(id));

  // Everything was acknowledged (XACK after the DB effects) and nothing was dead-lettered.
  CHECK(wait_until(
      [&] {
        const auto pending = redis.command({"XPENDING", stream, group});
        return !pending.elements.empty() && pending.elements[0].integer == 0;
      },
      10s, 100ms));
  CHECK(redis.command({"XLEN", dlq}).integer == 0);
  CHECK(balances_consistent(db, "10"));
  pqxx::read_transaction tx(db);
  CHECK(tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<int>() == 0);
}

TEST_CASE("broadcaster: bad events go to the DLQ with an error header and do not block the partition",
          "[broadcaster][dlq]") {
  test_bed bed("bad", 1);
  create_account(bed.db, 1, "1");
  create_account(bed.db, 2, "1");
  const auto good_id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.001"});
  const auto mismatch_id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.002"});
  const auto doge_id = insert_pending_withdrawal(bed.db, {2, random_address(), "0.003", "doge"});
  const auto unknown_id = std::max({good_id, mismatch_id, doge_id}) + 1000;
  const auto mismatch = load_withdrawal(bed.db, mismatch_id);
  const auto doge = load_withdrawal(bed.db, doge_id);

  auto worker = start_worker(bed.setup());
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));

  // All on partition 0, in this order: the good event comes last and must still be processed.
  std::vector<test_support::kafka_producer::message> bad{
      event_message(bed.topic, 1, fmt::format(R"({{"withdrawal_id": {}, "user_id": 1, "to_address": )", unknown_id + 1),
                    1, 0),
      event_message(bed.topic, 1, event_payload(unknown_id, 1, random_address().to_checksum_string(), "0.001"), 2, 0),
      // The row says 0.002 ETH to its recipient; the event asks for 0.5.
      event_message(bed.topic, 1, event_payload(mismatch_id, 1, mismatch.to_address, "0.5"), 4, 0),
  };
  test_support::kafka_producer producer;
  for (const auto& m : bad) producer.send(m);
  // Another chain's withdrawal is not bad: its own worker pays it.
  producer.send(event_message(bed.topic, 2, event_payload(doge_id, 2, doge.to_address, doge.amount, "doge"), 3, 0));
  producer.send(event_for(bed.topic, load_withdrawal(bed.db, good_id), 0));
  producer.flush();

  INFO("worker log " << worker->log_path());
  REQUIRE(wait_all_status(bed.db, {good_id}, "confirmed", 60s));
  check_paid_exactly_once(*bed.node, load_withdrawals(bed.db, {good_id}), bed.wallet.address);
  CHECK(bed.mined_nonce() == bed.first_nonce + 1);

  auto dead = test_support::read_topic(bed.dlq, bad.size(), 30s);
  REQUIRE(dead.size() == bad.size());
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("DLQ message " << i << ": " << dead[i].payload);
    CHECK(dead[i].payload == bad[i].payload);
    CHECK(dead[i].key == bad[i].key);
    CHECK_FALSE(dead[i].headers["error"].empty());
    // The original headers travel with it.
    std::map<std::string, std::string> original(bad[i].headers.begin(), bad[i].headers.end());
    for (const auto& [name, value] : original) CHECK(dead[i].headers[name] == value);
  }

  // A pending withdrawal named by a bad event is failed and refunded in full; it never reached the node.
  const auto failed = load_withdrawal(bed.db, mismatch_id);
  CHECK(failed.status == "failed");
  CHECK(failed.failed_at_set);
  CHECK(failed.failure_reason.value_or("").size() > 0);
  CHECK_FALSE(failed.tx_hash.has_value());
  CHECK(bed.node->get_balance(*chain::address::parse(mismatch.to_address)) == 0);
  CHECK(balance_is(bed.db, 1, "0.999"));  // 1 - 0.001 (paid); the 0.002 came back

  // The withdrawal on a chain this worker does not pay: skipped, untouched, still debited for its own worker.
  CHECK(load_withdrawal(bed.db, doge_id).status == "pending");
  CHECK(balance_is(bed.db, 2, "0.997"));
  CHECK(worker->metric("broadcaster_events_skipped_total{reason=\"other_chain\"}") == 1);

  CHECK(worker->metric("broadcaster_dead_letters_total") == 3);
  CHECK(worker->metric("broadcaster_failures_total{reason=\"dead_letter\"}") == 3);
}

TEST_CASE(
    "broadcaster: a refusal by the node holds the nonce, an operator's cancel takes it, refunds the user, and the "
    "withdrawal queued behind it is paid",
    "[broadcaster][rejected]") {
  // A hot wallet holding 0.01 ETH: a 1 ETH withdrawal cannot be paid.
  test_bed bed("rejected", 1, "0.01");
  create_account(bed.db, 1, "5");
  const auto big_id = insert_pending_withdrawal(bed.db, {1, random_address(), "1"});
  CHECK(balance_is(bed.db, 1, "4"));

  auto worker = start_worker(bed.setup());
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  test_support::kafka_producer producer;
  producer.send(event_for(bed.topic, load_withdrawal(bed.db, big_id)));
  producer.flush();

  INFO("worker log " << worker->log_path());
  REQUIRE(
      wait_until([&] { return worker->metric("broadcaster_failures_total{reason=\"rejected\"}") >= 1; }, 60s, 100ms));
  // Refused, not failed: the bytes may sit in some pool, so the nonce stays this withdrawal's.
  CHECK(load_withdrawal(bed.db, big_id).status == "signed");
  CHECK(balance_is(bed.db, 1, "4"));
  CHECK(released_nonces(bed.db, bed.wallet.address).empty());

  // The next withdrawal takes the next nonce and waits behind it in the node's pool.
  const auto next_id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.002"});
  producer.send(event_for(bed.topic, load_withdrawal(bed.db, next_id)));
  producer.flush();
  REQUIRE(wait_all_status(bed.db, {next_id}, "broadcast", 60s));
  CHECK(*load_withdrawal(bed.db, next_id).nonce == static_cast<std::int64_t>(bed.first_nonce + 1));
  CHECK(bed.mined_nonce() == bed.first_nonce);

  test_support::child_process cancel(test_support::bin_path("walletctl"),
                                     {"withdrawals", "cancel", std::to_string(big_id), "--by", "itest"},
                                     {{"DATABASE_URL", bed.schema.url()}}, test_support::new_log_path("walletctl"));
  REQUIRE(cancel.wait(30s) == 0);
  REQUIRE(wait_all_status(bed.db, {big_id}, "failed", 60s));
  REQUIRE(wait_all_status(bed.db, {next_id}, "confirmed", 60s));
  const auto big = load_withdrawal(bed.db, big_id);
  CHECK(big.failure_reason.value_or("").find("cancelled by an operator") != std::string::npos);
  CHECK(bed.node->get_balance(*chain::address::parse(big.to_address)) == 0);
  check_paid_exactly_once(*bed.node, load_withdrawals(bed.db, {next_id}), bed.wallet.address);
  CHECK(bed.mined_nonce() == bed.first_nonce + 2);  // the cancel, then the payment
  CHECK(balance_is(bed.db, 1, "4.998"));
  CHECK(worker->metric("broadcaster_failures_total{reason=\"cancelled\"}") == 1);
  const auto figures = check_ledger(bed.db, *bed.node, {big_id, next_id}, bed.wallet.address, {{1, "5"}});
  CHECK(figures.paid == 1);
  CHECK(figures.refunded == 1);
}
