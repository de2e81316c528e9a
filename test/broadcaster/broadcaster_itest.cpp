// broadcaster-worker against the real services: Kafka (or Redis Streams), PostgreSQL and anvil.
// Each test owns a schema, a topic (or stream), a consumer group, a DLQ and a freshly funded hot
// wallet; every recipient is a fresh random address, so its balance is exactly what was paid to it.

#include <signal.h>

#include <algorithm>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"
#include "ledger.hpp"
#include "common/redis.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;
using test_support::wait_until;

namespace {

// Workers that are killed come back within seconds; the group must not wait the default 45 s
// for the dead member's session to expire before handing its partitions to the new one.
const std::map<std::string, std::string> fast_group_env{
    {"BROADCASTER_KAFKA_PROPERTIES", "session.timeout.ms=6000;heartbeat.interval.ms=500"}};

// One test's world: schema, node, hot wallet, Kafka topic + DLQ + group.
struct test_bed {
  test_support::test_schema schema;
  pqxx::connection db;
  std::unique_ptr<broadcaster::eth_rpc> node;
  hot_wallet wallet;
  std::uint64_t first_nonce;
  std::string topic;
  std::string dlq;
  std::string group;

  test_bed(std::string_view name, int partitions, std::string_view funding_eth = "1")
      : db(schema.connect()),
        node(connect_node()),
        wallet(funded_hot_wallet(*node, to_wei(funding_eth))),
        first_nonce(node->get_transaction_count(wallet.address, "pending")),
        topic(unique_name(fmt::format("bcast_{}", name))),
        dlq(topic + "_dlq"),
        group(topic + "_group") {
    test_support::create_topic(topic, partitions);
    test_support::create_topic(dlq, 1);
  }

  worker_setup setup(std::map<std::string, std::string> extra_env = {}) const {
    return worker_setup{&schema, &wallet, topic, group, dlq, "kafka", std::move(extra_env)};
  }

  std::uint64_t mined_nonce() { return node->get_transaction_count(wallet.address, "latest"); }
};

// Distinct amounts, so a payment sent to the wrong recipient shows: 0.001001, 0.001002, ...
std::string amount_for(int i) { return fmt::format("0.00{:04}", 1000 + i); }

std::vector<std::int64_t> insert_withdrawals(pqxx::connection& db, int count, int users) {
  std::vector<std::int64_t> ids;
  for (int i = 1; i <= count; ++i) {
    ids.push_back(insert_pending_withdrawal(db, {1 + (i - 1) % users, random_address(), amount_for(i)}));
  }
  return ids;
}

std::size_t count_not_pending(pqxx::connection& db, const std::vector<std::int64_t>& ids) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1("SELECT count(*) FROM withdrawals WHERE id = ANY($1::bigint[]) AND status <> 'pending'",
                    fmt::format("{{{}}}", fmt::join(ids, ",")))[0]
      .as<std::size_t>();
}

// Every account holds `initial` minus its withdrawals that did not fail: debited once each, and
// refunded only for failures.
bool balances_consistent(pqxx::connection& db, std::string_view initial) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1(
          "SELECT bool_and(a.balance = $1::numeric - coalesce((SELECT sum(w.amount) FROM withdrawals w "
          "WHERE w.user_id = a.user_id AND w.status <> 'failed'), 0)) FROM accounts a",
          std::string(initial))[0]
      .as<bool>();
}

std::vector<std::int64_t> released_nonces(pqxx::connection& db, const chain::address& hot) {
  pqxx::read_transaction tx(db);
  std::vector<std::int64_t> out;
  for (const auto& r : tx.exec_params("SELECT nonce FROM hot_wallet_released_nonces WHERE lower(address) = $1 "
                                      "ORDER BY nonce",
                                      hot.to_lower_hex())) {
    out.push_back(r[0].as<std::int64_t>());
  }
  return out;
}

// Stops anvil for a test and starts it again when the test leaves, however it leaves.
class anvil_outage {
 public:
  anvil_outage() {
    test_support::services("down", "anvil");
    down_ = true;
  }
  ~anvil_outage() {
    try {
      end();
    } catch (const std::exception& e) {
      WARN("could not restart anvil: " << e.what());
    }
  }
  anvil_outage(const anvil_outage&) = delete;
  anvil_outage& operator=(const anvil_outage&) = delete;
  void end() {
    if (!down_) return;
    test_support::services("up", "anvil");
    down_ = false;
  }

 private:
  bool down_ = false;
};

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

TEST_CASE("broadcaster: the same event delivered twice pays once", "[broadcaster][duplicate]") {
  test_bed bed("dup", 1);
  create_account(bed.db, 1, "1");
  const auto id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.0123"});
  CHECK(balance_is(bed.db, 1, "0.9877"));

  auto worker = start_worker(bed.setup());
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));

  // The very same record (payload and headers) twice, as a producer retry or a relay crash between
  // publish and delete would deliver it.
  test_support::kafka_producer producer;
  const auto event = event_for(bed.topic, load_withdrawal(bed.db, id));
  producer.send(event);
  producer.send(event);
  producer.flush();

  INFO("worker log " << worker->log_path());
  REQUIRE(wait_all_status(bed.db, {id}, "confirmed", 60s));
  REQUIRE(wait_until([&] { return worker->metric("broadcaster_duplicates_skipped_total") >= 1; }, 30s, 100ms));

  CHECK(received_ids(worker->log())[id] == 2);
  CHECK(worker->metric("broadcaster_events_consumed_total") == 2);
  CHECK(worker->metric("broadcaster_duplicates_skipped_total") == 1);
  CHECK(worker->metric("broadcaster_broadcasts_total") == 1);
  CHECK(worker->metric("broadcaster_confirmed_total") == 1);

  const auto rows = load_withdrawals(bed.db, {id});
  check_paid_exactly_once(*bed.node, rows, bed.wallet.address);
  check_contiguous_nonces(rows, bed.first_nonce);
  // Exactly one transaction left the hot wallet, mined or waiting.
  CHECK(bed.mined_nonce() == bed.first_nonce + 1);
  CHECK(bed.node->get_transaction_count(bed.wallet.address, "pending") == bed.first_nonce + 1);
  CHECK(balance_is(bed.db, 1, "0.9877"));
}

TEST_CASE("broadcaster: SIGKILLed three times mid-stream and every withdrawal is still paid exactly once",
          "[broadcaster][crash]") {
  constexpr int count = 30;
  test_bed bed("crash", 3);
  for (int user = 1; user <= 3; ++user) create_account(bed.db, user, "10");
  const auto ids = insert_withdrawals(bed.db, count, 3);

  auto worker = start_worker(bed.setup(fast_group_env), "worker-0");
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 3));
  test_support::kafka_producer producer;
  for (const auto& w : load_withdrawals(bed.db, ids)) producer.send(event_for(bed.topic, w));
  producer.flush();

  std::mt19937 rng{std::random_device{}()};
  std::string kills;
  for (int kill = 1; kill <= 3; ++kill) {
    // A random point of progress, then a random instant: between claim, signing, sending and
    // the offset commit, wherever it lands.
    const std::size_t target =
        std::min(static_cast<std::size_t>(count - 1), count_not_pending(bed.db, ids) + 2 + rng() % 5);
    REQUIRE(wait_until([&] { return count_not_pending(bed.db, ids) >= target || !worker->running(); }, 60s, 5ms));
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(rng() % 150)));
    REQUIRE(worker->running());
    worker->kill();
    kills += fmt::format("kill {} with {} of {} withdrawals past pending ({})\n", kill, count_not_pending(bed.db, ids),
                         count, worker->log_path());
    worker = start_worker(bed.setup(fast_group_env), fmt::format("worker-{}", kill));
  }
  INFO(kills);

  const bool all_confirmed = wait_all_status(bed.db, ids, "confirmed", 120s);
  const auto rows = load_withdrawals(bed.db, ids);
  INFO("withdrawals:\n" << describe(rows) << "last worker log " << worker->log_path());
  REQUIRE(all_confirmed);
  check_paid_exactly_once(*bed.node, rows, bed.wallet.address);
  // Nonces in the DB are exactly [first, first + 30): no gap, no reuse across the restarts.
  check_contiguous_nonces(rows, bed.first_nonce);
  CHECK(bed.mined_nonce() == bed.first_nonce + count);
  CHECK(released_nonces(bed.db, bed.wallet.address).empty());
  CHECK(balances_consistent(bed.db, "10"));
}

TEST_CASE("broadcaster: the node down for 10 s while events arrive is retried by the same process and loses nothing",
          "[broadcaster][node-down]") {
  test_bed bed("nodedown", 1);
  create_account(bed.db, 1, "10");
  const auto ids = insert_withdrawals(bed.db, 6, 1);
  const std::vector<std::int64_t> before(ids.begin(), ids.begin() + 2);
  const std::vector<std::int64_t> during(ids.begin() + 2, ids.end());

  auto worker = start_worker(bed.setup());
  const int pid = worker->pid();
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  test_support::kafka_producer producer;
  for (const auto& w : load_withdrawals(bed.db, before)) producer.send(event_for(bed.topic, w));
  producer.flush();
  REQUIRE(wait_all_status(bed.db, before, "confirmed", 60s));
  // Checked now: what the node reports about older blocks after a restart is anvil's business.
  check_paid_exactly_once(*bed.node, load_withdrawals(bed.db, before), bed.wallet.address);

  {
    anvil_outage outage;
    const auto down_at = std::chrono::steady_clock::now();
    for (const auto& w : load_withdrawals(bed.db, during)) producer.send(event_for(bed.topic, w));
    producer.flush();
    // The worker has the first of them in hand while the node is unreachable.
    CHECK(wait_until([&] { return received_ids(worker->log()).contains(during.front()); }, 9s, 50ms));
    std::this_thread::sleep_until(down_at + 10s);
    CHECK(worker->running());
    // A node that does not answer is no reason to fail a withdrawal.
    CHECK(count_status(bed.db, during, "failed") == 0);
    outage.end();
  }

  const bool all_confirmed = wait_all_status(bed.db, ids, "confirmed", 90s);
  const auto rows = load_withdrawals(bed.db, ids);
  INFO("withdrawals:\n" << describe(rows) << "worker log " << worker->log_path());
  REQUIRE(all_confirmed);
  CHECK(worker->running());
  CHECK(worker->pid() == pid);
  check_paid_exactly_once(*bed.node, load_withdrawals(bed.db, during), bed.wallet.address);
  check_contiguous_nonces(rows, bed.first_nonce);
  CHECK(bed.mined_nonce() == bed.first_nonce + ids.size());
  CHECK(worker->metric("broadcaster_failures_total{reason=\"node_unavailable\"}") > 0);
  CHECK(worker->metric("broadcaster_failures_total{reason=\"rejected\"}") == 0);
  CHECK(balances_consistent(bed.db, "10"));
}

TEST_CASE("broadcaster: two workers in one group share the partitions and pay each withdrawal once",
          "[broadcaster][group]") {
  constexpr int partitions = 6;
  constexpr int count = 24;
  test_bed bed("group", partitions);
  for (int user = 1; user <= partitions; ++user) create_account(bed.db, user, "10");
  const auto ids = insert_withdrawals(bed.db, count, partitions);

  // Same group, same hot wallet: the nonces come from one DB row lock, whoever signs.
  auto a = start_worker(bed.setup(fast_group_env), "worker-a");
  auto b = start_worker(bed.setup(fast_group_env), "worker-b");
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 2, partitions, 90s));

  test_support::kafka_producer producer;
  int i = 0;
  for (const auto& w : load_withdrawals(bed.db, ids)) producer.send(event_for(bed.topic, w, i++ % partitions));
  producer.flush();

  const bool all_confirmed = wait_all_status(bed.db, ids, "confirmed", 120s);
  const auto rows = load_withdrawals(bed.db, ids);
  INFO("withdrawals:\n" << describe(rows) << "logs " << a->log_path() << " " << b->log_path());
  REQUIRE(all_confirmed);
  check_paid_exactly_once(*bed.node, rows, bed.wallet.address);
  check_contiguous_nonces(rows, bed.first_nonce);
  CHECK(bed.mined_nonce() == bed.first_nonce + count);

  const auto got_a = received_ids(a->log());
  const auto got_b = received_ids(b->log());
  CHECK_FALSE(got_a.empty());
  CHECK_FALSE(got_b.empty());
  for (const auto id : ids) {
    INFO("withdrawal " << id);
    CHECK((got_a.contains(id) || got_b.contains(id)));
  }
  CHECK(a->running());
  CHECK(b->running());
  CHECK(balances_consistent(bed.db, "10"));
}

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
  struct cleanup {
    common::redis::connection& redis;
    std::vector<std::string> keys;
    ~cleanup() {
      try {
        for (const auto& k : keys) redis.command({"DEL", k});
      } catch (const std::exception&) {
      }
    }
  } drop_streams{redis, {stream, dlq}};

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

TEST_CASE("broadcaster: SIGTERM exits 0 with offsets committed so a restarted worker re-processes nothing",
          "[broadcaster][graceful]") {
  constexpr int count = 6;
  test_bed bed("graceful", 1);
  create_account(bed.db, 1, "10");
  const auto ids = insert_withdrawals(bed.db, count, 1);

  auto first = start_worker(bed.setup(), "worker-first");
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  test_support::kafka_producer producer;
  for (const auto& w : load_withdrawals(bed.db, ids)) producer.send(event_for(bed.topic, w));
  producer.flush();

  // Stop it while it is working through the stream.
  REQUIRE(wait_until([&] { return received_ids(first->log()).size() >= 2; }, 60s, 5ms));
  first->signal(SIGTERM);
  const auto exit_code = first->wait(30s);
  INFO("first worker log " << first->log_path());
  REQUIRE(exit_code.has_value());
  CHECK(*exit_code == 0);

  // The committed offset is exactly the number of events whose DB effects were committed: the
  // event in hand was finished, nothing after it was marked done.
  const auto committed = test_support::committed_offsets(bed.group, bed.topic);
  const auto done = count_not_pending(bed.db, ids);
  REQUIRE(committed.contains(0));
  CHECK(static_cast<std::size_t>(committed.at(0)) == done);

  auto second = start_worker(bed.setup(), "worker-second");
  const bool all_confirmed = wait_all_status(bed.db, ids, "confirmed", 60s);
  const auto rows = load_withdrawals(bed.db, ids);
  INFO("withdrawals:\n" << describe(rows) << "second worker log " << second->log_path());
  REQUIRE(all_confirmed);
  check_paid_exactly_once(*bed.node, rows, bed.wallet.address);
  check_contiguous_nonces(rows, bed.first_nonce);
  CHECK(bed.mined_nonce() == bed.first_nonce + count);

  CHECK(second->metric("broadcaster_duplicates_skipped_total") == 0);
  CHECK(second->metric("broadcaster_events_consumed_total") == static_cast<double>(count) - static_cast<double>(done));
  CHECK(balances_consistent(bed.db, "10"));
}
