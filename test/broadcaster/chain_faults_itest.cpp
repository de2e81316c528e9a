// The money path through what only a chain does: fees that rise under a stuck transaction, a
// reorg that drops a mined payment, an operator's cancel racing the payment. Each test runs an
// anvil of its own (mining stopped or the chain reorganised there, never on the shared node) and
// ends with the ledger check.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "ledger.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;
using test_support::wait_until;
using json = nlohmann::json;

namespace {

struct chain_bed {
  test_anvil anvil;
  test_support::test_schema schema;
  pqxx::connection db;
  std::unique_ptr<broadcaster::eth_rpc> node;
  hot_wallet wallet;
  std::string topic;
  std::string dlq;
  std::string group;

  explicit chain_bed(std::string_view name)
      : db(schema.connect()),
        node(anvil.connect()),
        wallet(fresh_hot_wallet(*node, to_wei("10"))),
        topic(unique_name(fmt::format("faults_{}", name))),
        dlq(topic + "_dlq"),
        group(topic + "_group") {
    test_support::create_topic(topic, 1);
    test_support::create_topic(dlq, 1);
  }

  // A worker on this bed's node with `extra_env`, once it holds the topic's partition.
  std::unique_ptr<daemon_process> worker(std::map<std::string, std::string> extra_env) {
    auto started =
        start_worker(on_node({&schema, &wallet, topic, group, dlq, "kafka", std::move(extra_env)}, anvil.url()));
    INFO("worker log " << started->log_path());
    REQUIRE(wait_group_assigned(group, topic, 1, 1));
    return started;
  }

  // User 1 gets a balance of 5 and withdraws `amount`: the withdrawal's id (pending, not published).
  std::int64_t pending_withdrawal(std::string_view amount) {
    create_account(db, 1, "5");
    return insert_pending_withdrawal(db, {1, random_address(), std::string(amount)});
  }

  void publish(std::int64_t id) { publish(std::vector<std::int64_t>{id}); }
  void publish(const std::vector<std::int64_t>& ids) {
    test_support::kafka_producer producer;
    for (const auto id : ids) producer.send(event_for(topic, load_withdrawal(db, id)));
    producer.flush();
  }

  std::string status(std::int64_t id) { return load_withdrawal(db, id).status; }

  // The node holds a cancel version of `id` (in its pool, in the payment's place).
  bool cancel_in_pool(std::int64_t id) {
    pqxx::read_transaction tx(db);
    for (const auto& r : tx.exec_params(
             "SELECT tx_hash FROM withdrawal_transactions WHERE withdrawal_id = $1 AND kind = 'cancel'", id)) {
      if (!transaction_by_hash(*node, r[0].as<std::string>()).is_null()) return true;
    }
    return false;
  }

  // Versions of `id`: how many, and how many are recorded as mined.
  std::pair<int, int> versions(std::int64_t id) {
    pqxx::read_transaction tx(db);
    const auto r = tx.exec_params1(
        "SELECT count(*), count(mined_block_number) FROM withdrawal_transactions WHERE withdrawal_id = $1", id);
    return {r[0].as<int>(), r[1].as<int>()};
  }
};

}  // namespace

TEST_CASE(
    "chain: automine off and the base fee raised under a sent payment: it is replaced with higher fees and "
    "exactly one version is mined",
    "[broadcaster][chain][fee-bump]") {
  chain_bed bed("bump");
  const auto id = bed.pending_withdrawal("0.5");
  auto worker = bed.worker({{"BROADCASTER_CHAIN_REBROADCAST_AFTER", "1s"}});
  INFO("worker log " << worker->log_path());
  {
    automine_off manual(*bed.node);
    // The payment is priced from the latest block; the next blocks cost 50 gwei a gas.
    bed.node->call("anvil_setNextBlockBaseFeePerGas", json::array({broadcaster::to_quantity(50'000'000'000ULL)}));
    bed.publish(id);
    REQUIRE(wait_until([&] { return bed.versions(id).first >= 1; }, 30s, 50ms));
    // Blocks keep coming; the underpriced version cannot be in them.
    const bool confirmed = wait_until(
        [&] {
          mine(*bed.node);
          return bed.status(id) == "confirmed";
        },
        60s, 400ms);
    REQUIRE(confirmed);
  }
  const auto [count, mined] = bed.versions(id);
  CHECK(count >= 2);
  CHECK(mined == 1);
  CHECK(worker->metric("broadcaster_fee_bumps_total") >= 1);
  CHECK(bed.node->get_transaction_count(bed.wallet.address, "latest") == 1);
  check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "5"}});
}

TEST_CASE(
    "chain: a reorg drops the mined payment before it is deep enough: it is sent again, mined again, and "
    "confirmed only at depth",
    "[broadcaster][chain][reorg]") {
  chain_bed bed("reorg");
  const auto id = bed.pending_withdrawal("0.75");
  auto worker = bed.worker({{"BROADCASTER_CHAIN_CONFIRMATIONS", "3"}});
  INFO("worker log " << worker->log_path());
  bed.publish(id);  // automine: mined in the next block, 1 deep

  REQUIRE(wait_until([&] { return bed.versions(id).second == 1; }, 60s, 50ms));
  CHECK(bed.status(id) == "broadcast");  // 1 block deep of 3
  const auto recipient = *chain::address::parse(load_withdrawal(bed.db, id).to_address);
  REQUIRE(bed.node->get_balance(recipient) == to_wei("0.75"));

  // The block holding the payment is replaced by an empty one.
  bed.node->call("anvil_reorg", json::array({1, json::array()}));
  CHECK(bed.node->get_balance(recipient) == 0);
  REQUIRE(wait_until([&] { return worker->metric("broadcaster_reorgs_total") >= 1; }, 30s, 100ms));
  // Re-sent from the stored bytes and mined again (automine), still not deep enough.
  REQUIRE(wait_until([&] { return bed.versions(id).second == 1; }, 30s, 50ms));
  REQUIRE(wait_until([&] { return bed.node->get_balance(recipient) == to_wei("0.75"); }, 30s, 100ms));
  CHECK(bed.status(id) == "broadcast");

  mine(*bed.node);
  mine(*bed.node);
  REQUIRE(wait_all_status(bed.db, {id}, "confirmed", 30s));
  CHECK(bed.node->get_transaction_count(bed.wallet.address, "latest") == 1);
  check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "5"}});
}

TEST_CASE(
    "chain: walletctl withdrawals cancel on a stuck withdrawal: the cancel is mined, then the user is refunded, "
    "never both paid and refunded",
    "[broadcaster][chain][cancel]") {
  chain_bed bed("cancel");
  const auto id = bed.pending_withdrawal("1.5");
  auto worker = bed.worker({{"BROADCASTER_CHAIN_REBROADCAST_AFTER", "5m"}});
  INFO("worker log " << worker->log_path());
  {
    automine_off manual(*bed.node);
    bed.publish(id);
    REQUIRE(wait_all_status(bed.db, {id}, "broadcast", 30s));  // in the node's pool, not mined

    test_support::child_process cancel(test_support::bin_path("walletctl"),
                                       {"withdrawals", "cancel", std::to_string(id), "--by", "itest"},
                                       {{"DATABASE_URL", bed.schema.url()}}, test_support::new_log_path("walletctl"));
    REQUIRE(cancel.wait(30s) == 0);
    INFO("walletctl: " << cancel.log());
    CHECK(cancel.log_contains("cancel requested by itest"));
    CHECK(bed.status(id) == "broadcast");  // walletctl only records the request

    // Mined only once the node holds the cancel in the payment's place.
    REQUIRE(wait_until([&] { return bed.cancel_in_pool(id); }, 30s, 50ms));
    mine(*bed.node);
    REQUIRE(wait_all_status(bed.db, {id}, "failed", 30s));
  }
  const auto row = load_withdrawal(bed.db, id);
  CHECK(row.failure_reason.value_or("").find("cancelled by an operator") != std::string::npos);
  CHECK(bed.node->get_transaction_count(bed.wallet.address, "latest") == 1);
  CHECK(worker->metric("broadcaster_failures_total{reason=\"cancelled\"}") == 1);
  const auto figures = check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "5"}});
  CHECK(figures.refunded == 1);
}

TEST_CASE(
    "chain: the tracker asks receipts per block: 50 withdrawals in flight mined in 2 blocks cost one "
    "eth_getBlockReceipts per block, not 50 receipt calls per pass",
    "[broadcaster][chain][tracker]") {
  chain_bed bed("per_block");
  create_account(bed.db, 1, "5");
  std::vector<std::int64_t> first;
  std::vector<std::int64_t> second;
  for (int i = 0; i < 25; ++i) first.push_back(insert_pending_withdrawal(bed.db, {1, random_address(), "0.01"}));
  for (int i = 0; i < 25; ++i) second.push_back(insert_pending_withdrawal(bed.db, {1, random_address(), "0.01"}));
  std::vector<std::int64_t> all = first;
  all.insert(all.end(), second.begin(), second.end());
  constexpr std::uint64_t confirmations = 3;
  auto worker = bed.worker({{"BROADCASTER_CHAIN_CONFIRMATIONS", std::to_string(confirmations)}});
  INFO("worker log " << worker->log_path());
  const auto start_block = block_number(*bed.node);
  {
    automine_off manual(*bed.node);
    bed.publish(first);
    REQUIRE(wait_all_status(bed.db, first, "broadcast", 60s));  // 25 in the node's pool
    mine(*bed.node);
    bed.publish(second);
    REQUIRE(wait_all_status(bed.db, second, "broadcast", 60s));
    mine(*bed.node);
    // 50 mined, 1 and 2 blocks deep of 3: every pass now has 50 in flight with mined nonces. Let
    // the tracker pass at least 20 times (one eth_blockNumber each) before the last block.
    const double passes_before = worker->rpc_calls("eth_blockNumber");
    REQUIRE(wait_until([&] { return worker->rpc_calls("eth_blockNumber") >= passes_before + 20; }, 30s, 50ms));
    CHECK(count_status(bed.db, all, "confirmed") == 0);
    mine(*bed.node);  // the first 25 at depth 3
    REQUIRE(wait_all_status(bed.db, first, "confirmed", 60s));
    CHECK(count_status(bed.db, second, "confirmed") == 0);
    mine(*bed.node);  // the second 25 at depth 3
  }
  REQUIRE(wait_all_status(bed.db, all, "confirmed", 60s));
  const auto blocks = block_number(*bed.node) - start_block;  // the 4 blocks mined by the test
  const double per_block = worker->rpc_calls("eth_getBlockReceipts");
  const double per_transaction = worker->rpc_calls("eth_getTransactionReceipt");
  const double passes = worker->rpc_calls("eth_blockNumber");
  INFO("blocks " << blocks << ", eth_getBlockReceipts " << per_block << ", eth_getTransactionReceipt "
                 << per_transaction << ", passes " << passes);
  // The first scan looks confirmations + 16 blocks back; then one call per new block.
  CHECK(per_block >= 3);
  CHECK(per_block <= static_cast<double>(blocks + confirmations + 16 + 1));
  CHECK(per_transaction == 0);
  CHECK(passes >= 20);  // per transaction and pass it would have been at least 20 x 25
  check_ledger(bed.db, *bed.node, all, bed.wallet.address, {{1, "5"}});
}
