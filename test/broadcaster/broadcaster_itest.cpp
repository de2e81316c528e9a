// broadcaster-worker against the real services: Kafka, PostgreSQL and anvil, under faults
// (duplicates, kills, the node down, a second worker, SIGTERM); broadcaster_inputs_itest.cpp has
// the other transports and bad input. Each test owns a schema, a topic, a consumer group, a DLQ and
// a freshly funded hot wallet; every recipient is a fresh random address, so its balance is exactly
// what was paid to it.

#include <signal.h>

#include <algorithm>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"
#include "ledger.hpp"
#include "test_bed.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;
using test_support::wait_until;

namespace {

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
