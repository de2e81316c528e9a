// The money path's guarantees against faults a real node produces, on the shared anvil (no mining
// changes): a node's refusal is never a refund, a lost event is re-driven, an identical payout
// retried after a failure pays, another chain's events are skipped. Every test ends with the
// ledger check (paid on chain XOR refunded; debits = payments + refunds).

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "broadcaster/transaction_builder.hpp"
#include "chain/hex.hpp"
#include "ledger.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;
using test_support::wait_until;

namespace {

// One test's world on the shared anvil: schema, node, a hot wallet funded with anvil_setBalance,
// a Kafka topic, DLQ and group of its own.
struct money_bed {
  test_support::test_schema schema;
  pqxx::connection db;
  std::unique_ptr<broadcaster::eth_rpc> node;
  hot_wallet wallet;
  std::string topic;
  std::string dlq;
  std::string group;

  money_bed(std::string_view name, std::string_view funding_eth)
      : db(schema.connect()),
        node(connect_node()),
        wallet(fresh_hot_wallet(*node, to_wei(funding_eth))),
        topic(unique_name(fmt::format("money_{}", name))),
        dlq(topic + "_dlq"),
        group(topic + "_group") {
    test_support::create_topic(topic, 1);
    test_support::create_topic(dlq, 1);
  }

  worker_setup setup(std::map<std::string, std::string> extra_env = {}) const {
    return worker_setup{&schema, &wallet, topic, group, dlq, "kafka", std::move(extra_env)};
  }

  void publish(const std::vector<std::int64_t>& ids) {
    test_support::kafka_producer producer;
    for (const auto& w : load_withdrawals(db, ids)) producer.send(event_for(topic, w));
    producer.flush();
  }

  std::string status(std::int64_t id) { return load_withdrawal(db, id).status; }

  struct refused_withdrawal {
    std::int64_t id;
    std::unique_ptr<daemon_process> worker;
  };
  /// User 1 (balance 5) withdraws `amount` through a worker whose hot wallet cannot pay: returns
  /// once the node refused the send and the withdrawal waits signed. The worker retries a refused
  /// send only after a minute, so what the test does next comes first.
  refused_withdrawal refused(std::string_view amount) {
    create_account(db, 1, "5");
    const auto id = insert_pending_withdrawal(db, {1, random_address(), std::string(amount)});
    auto worker = start_worker(setup({{"BROADCASTER_CONSUMER_RETRY_BACKOFF_MAX", "1m"}}));
    INFO("worker log " << worker->log_path());
    REQUIRE(wait_group_assigned(group, topic, 1, 1));
    publish({id});
    REQUIRE(
        wait_until([&] { return worker->metric("broadcaster_failures_total{reason=\"rejected\"}") >= 1; }, 60s, 100ms));
    REQUIRE(status(id) == "signed");
    return {id, std::move(worker)};
  }
};

struct version_bytes {
  std::string tx_hash;
  std::string raw_hex;
};

std::vector<version_bytes> versions(pqxx::connection& db, std::int64_t id) {
  pqxx::read_transaction tx(db);
  std::vector<version_bytes> out;
  for (const auto& r : tx.exec_params("SELECT tx_hash, encode(raw_tx, 'hex') FROM withdrawal_transactions "
                                      "WHERE withdrawal_id = $1 ORDER BY id",
                                      id)) {
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>()});
  }
  return out;
}

}  // namespace

TEST_CASE(
    "money: a hot wallet without funds is refused by the node, the withdrawal waits signed, is never refunded, "
    "and is paid exactly once when topped up",
    "[broadcaster][money][refused]") {
  money_bed bed("nofunds", "0");
  create_account(bed.db, 1, "5");
  const auto id = insert_pending_withdrawal(bed.db, {1, random_address(), "1"});
  auto worker = start_worker(bed.setup());
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  bed.publish({id});

  INFO("worker log " << worker->log_path());
  // Refused at least twice: the event path, then the tracker's retry.
  REQUIRE(
      wait_until([&] { return worker->metric("broadcaster_failures_total{reason=\"rejected\"}") >= 2; }, 60s, 200ms));
  CHECK(bed.status(id) == "signed");
  CHECK(balance_is(bed.db, 1, "4"));  // still debited: never refunded on a node's word
  REQUIRE(wait_until([&] { return worker->metric("broadcaster_withdrawals_by_status{status=\"signed\"}") == 1; }, 10s,
                     100ms));
  CHECK(worker->metric("broadcaster_hot_wallet_balance_wei") == 0);

  set_balance(*bed.node, bed.wallet.address, to_wei("2"));
  REQUIRE(wait_all_status(bed.db, {id}, "confirmed", 60s));
  CHECK(bed.node->get_transaction_count(bed.wallet.address, "latest") == 1);
  const auto figures = check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "5"}});
  CHECK(figures.paid == 1);
  CHECK(figures.refunded == 0);
}

TEST_CASE(
    "money: two processors hold the same signed bytes, one is refused while the other's send is accepted: one "
    "payment, no refund",
    "[broadcaster][money][race]") {
  money_bed bed("race", "0");
  // The worker retries its refused send only after a minute: the other processor wins the race.
  const auto [id, worker] = bed.refused("0.25");
  INFO("worker log " << worker->log_path());

  // The other processor (a second worker, the tracker's resume, another node behind the URL) holds
  // the very same bytes, and its send is accepted once the wallet has funds.
  set_balance(*bed.node, bed.wallet.address, to_wei("1"));
  const auto stored = versions(bed.db, id);
  REQUIRE(stored.size() == 1);
  chain::hash256 hash{};
  chain::from_hex(stored[0].tx_hash, hash);
  const auto sent = bed.node->send_raw_transaction(chain::from_hex(stored[0].raw_hex), hash);
  REQUIRE(sent.outcome == broadcaster::send_outcome::sent);

  REQUIRE(wait_all_status(bed.db, {id}, "confirmed", 60s));
  CHECK(load_withdrawal(bed.db, id).tx_hash == stored[0].tx_hash);
  check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "5"}});
}

TEST_CASE("money: a withdrawal whose event never reached the broker is paid within reconcile.pending_after",
          "[broadcaster][money][reconcile]") {
  money_bed bed("lost", "1");
  create_account(bed.db, 1, "1");
  // What the wallet commits, with the outbox row deleted before any relay sent it.
  std::int64_t id = 0;
  {
    pqxx::work tx(bed.db);
    const new_withdrawal w{1, random_address(), "0.01"};
    id = insert_pending_withdrawal(tx, w);
    insert_outbox_event(tx, bed.topic, 1, event_payload(id, 1, w.to.to_checksum_string(), w.amount));
    tx.exec0("DELETE FROM outbox_messages");
    tx.commit();
  }
  auto worker = start_worker(bed.setup({{"BROADCASTER_RECONCILE_PENDING_AFTER", "3s"}}));
  INFO("worker log " << worker->log_path());
  REQUIRE(wait_until([&] { return worker->metric("broadcaster_oldest_pending_age_seconds") > 0; }, 10s, 100ms));
  REQUIRE(wait_all_status(bed.db, {id}, "confirmed", 60s));
  CHECK(worker->log().find("processing it from the database") != std::string::npos);
  CHECK(worker->metric("broadcaster_events_consumed_total") == 0);
  check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "1"}});
}

TEST_CASE("money: after a failure that released its nonce, the same payout retried (same bytes, same hash) is paid",
          "[broadcaster][money][identical-retry]") {
  money_bed bed("identical", "1");
  const auto to = random_address();
  const std::string amount = "0.02";
  // Fixed fees: the retry signs byte for byte what the failed withdrawal had signed.
  broadcaster::chain_settings fixed;
  fixed.max_fee_per_gas = chain::uint256(3'000'000'000ULL);
  fixed.max_priority_fee_per_gas = chain::uint256(1'000'000'000ULL);
  const auto signed_tx = broadcaster::build_and_sign(fixed, {31337, 0, to, to_wei(amount)},
                                                     {*fixed.max_fee_per_gas, *fixed.max_priority_fee_per_gas},
                                                     chain::private_key(bed.wallet.key_hex));
  const std::string hash = chain::to_hex(signed_tx.hash);
  const std::string from = bed.wallet.address.to_checksum_string();

  // The first attempt: signed with nonce 0, failed before any send (refunded, nonce released).
  create_account(bed.db, 1, "1");
  const auto first = insert_pending_withdrawal(bed.db, {1, to, amount});
  {
    pqxx::work tx(bed.db);
    tx.exec_params0("INSERT INTO hot_wallet_nonces (chain, address, next_nonce) VALUES ('eth', $1, 1)", from);
    tx.exec_params0("INSERT INTO hot_wallet_released_nonces (chain, address, nonce) VALUES ('eth', $1, 0)", from);
    tx.exec_params0(
        "UPDATE withdrawals SET status = 'failed', from_address = $2, nonce = 0, tx_hash = $3, "
        "raw_tx = decode($4, 'hex'), failure_reason = 'test: failed before any send', failed_at = now() "
        "WHERE id = $1",
        first, from, hash, chain::to_hex(signed_tx.raw, false));
    tx.exec_params0(
        "INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx, discarded_at) "
        "VALUES ($1, 'payment', 0, $2, decode($3, 'hex'), now())",
        first, hash, chain::to_hex(signed_tx.raw, false));
    tx.exec_params0("UPDATE accounts SET balance = balance + $2::numeric WHERE user_id = $1", 1, amount);
    tx.commit();
  }
  const auto retry = insert_pending_withdrawal(bed.db, {1, to, amount});
  auto worker = start_worker(bed.setup({{"BROADCASTER_CHAIN_MAX_FEE_PER_GAS", "3000000000"},
                                        {"BROADCASTER_CHAIN_MAX_PRIORITY_FEE_PER_GAS", "1000000000"}}));
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  bed.publish({retry});
  INFO("worker log " << worker->log_path());
  REQUIRE(wait_all_status(bed.db, {retry}, "confirmed", 60s));
  CHECK(load_withdrawal(bed.db, retry).tx_hash == hash);  // the very same transaction
  CHECK(worker->metric("broadcaster_dead_letters_total") == 0);
  const auto figures = check_ledger(bed.db, *bed.node, {first, retry}, bed.wallet.address, {{1, "1"}});
  CHECK(figures.paid == 1);
  CHECK(figures.refunded == 1);
}

TEST_CASE(
    "money: one worker per chain, the eth worker skips a second chain's events (offsets committed, nothing "
    "failed) and the base worker pays them",
    "[broadcaster][money][chains]") {
  money_bed bed("chains", "1");
  const auto base_wallet = fresh_hot_wallet(*bed.node, to_wei("1"));
  create_account(bed.db, 1, "1");
  create_account(bed.db, 2, "1");
  const auto eth_id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.01"});
  const auto base_id = insert_pending_withdrawal(bed.db, {2, random_address(), "0.02", "base"});
  auto eth = start_worker(bed.setup(), "worker-eth");
  REQUIRE(wait_group_assigned(bed.group, bed.topic, 1, 1));
  bed.publish({base_id, eth_id});
  INFO("eth worker log " << eth->log_path());
  REQUIRE(wait_all_status(bed.db, {eth_id}, "confirmed", 60s));
  REQUIRE(wait_until([&] { return test_support::committed_offsets(bed.group, bed.topic)[0] == 2; }, 30s, 200ms));
  CHECK(eth->metric("broadcaster_events_skipped_total{reason=\"other_chain\"}") == 1);
  CHECK(eth->metric("broadcaster_dead_letters_total") == 0);
  CHECK(bed.status(base_id) == "pending");

  // The base chain's worker: its own group on the same topic, its own hot wallet.
  worker_setup base = bed.setup({{"BROADCASTER_CHAIN_NAME", "base"}});
  base.group = bed.group + "_base";
  base.wallet = &base_wallet;
  auto base_worker = start_worker(base, "worker-base");
  INFO("base worker log " << base_worker->log_path());
  REQUIRE(wait_all_status(bed.db, {base_id}, "confirmed", 60s));
  CHECK(base_worker->metric("broadcaster_events_skipped_total{reason=\"other_chain\"}") == 1);
  check_ledger(bed.db, *bed.node, {eth_id}, bed.wallet.address, {{1, "1"}});
  check_ledger(bed.db, *bed.node, {base_id}, base_wallet.address, {{2, "1"}});
}

TEST_CASE(
    "money: the chain uses the nonce of a refused withdrawal for another transaction: refunded only then, and "
    "the next withdrawal takes the next nonce",
    "[broadcaster][money][nonce-taken]") {
  money_bed bed("taken", "0");
  const auto [id, worker] = bed.refused("0.5");
  INFO("worker log " << worker->log_path());

  // Someone else holding the key (an operator's wallet tool, another system) spends nonce 0.
  set_balance(*bed.node, bed.wallet.address, to_wei("1"));
  transfer(*bed.node, chain::private_key(bed.wallet.key_hex), random_address(), to_wei("0.001"));
  REQUIRE(wait_all_status(bed.db, {id}, "failed", 60s));
  CHECK(load_withdrawal(bed.db, id).failure_reason.value_or("").find("none of this withdrawal's") != std::string::npos);
  CHECK(worker->metric("broadcaster_failures_total{reason=\"nonce_taken\"}") == 1);

  const auto next = insert_pending_withdrawal(bed.db, {1, random_address(), "0.25"});
  bed.publish({next});
  REQUIRE(wait_all_status(bed.db, {next}, "confirmed", 60s));
  CHECK(load_withdrawal(bed.db, next).nonce == 1);
  const auto figures = check_ledger(bed.db, *bed.node, {id, next}, bed.wallet.address, {{1, "5"}});
  CHECK(figures.refunded == 1);
  CHECK(figures.paid == 1);
}

TEST_CASE("money: walletctl withdrawals cancel on a pending withdrawal refunds it at once, nothing signed",
          "[broadcaster][money][cancel-pending]") {
  money_bed bed("cancelpending", "1");
  create_account(bed.db, 1, "2");
  const auto id = insert_pending_withdrawal(bed.db, {1, random_address(), "0.3"});  // its event never comes
  auto worker = start_worker(bed.setup());
  INFO("worker log " << worker->log_path());
  test_support::child_process cancel(test_support::bin_path("walletctl"),
                                     {"withdrawals", "cancel", std::to_string(id), "--by", "itest"},
                                     {{"DATABASE_URL", bed.schema.url()}}, test_support::new_log_path("walletctl"));
  REQUIRE(cancel.wait(30s) == 0);
  REQUIRE(wait_all_status(bed.db, {id}, "failed", 30s));  // long before reconcile.pending_after (5m)
  const auto row = load_withdrawal(bed.db, id);
  CHECK_FALSE(row.nonce.has_value());
  CHECK(row.failure_reason.value_or("").find("cancelled by an operator before signing") != std::string::npos);
  // A second request for a finished withdrawal is refused.
  test_support::child_process again(test_support::bin_path("walletctl"), {"withdrawals", "cancel", std::to_string(id)},
                                    {{"DATABASE_URL", bed.schema.url()}}, test_support::new_log_path("walletctl"));
  CHECK(again.wait(30s) == 1);
  CHECK(again.log_contains("already failed"));
  const auto figures = check_ledger(bed.db, *bed.node, {id}, bed.wallet.address, {{1, "2"}});
  CHECK(figures.refunded == 1);
}

TEST_CASE(
    "money: events fetched together are signed and sent as one run, taking a released nonce first, while a "
    "cancelled withdrawal and a mismatching event in the run go the careful way",
    "[broadcaster][money][run]") {
  money_bed bed("run", "1");
  create_account(bed.db, 1, "5");
  const std::string from = bed.wallet.address.to_checksum_string();
  {
    // Nonce 0 was released by an earlier failure: the run must use it before the counter's 1, 2, ...
    pqxx::work tx(bed.db);
    tx.exec_params0("INSERT INTO hot_wallet_nonces (chain, address, next_nonce) VALUES ('eth', $1, 1)", from);
    tx.exec_params0("INSERT INTO hot_wallet_released_nonces (chain, address, nonce) VALUES ('eth', $1, 0)", from);
    tx.commit();
  }
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(insert_pending_withdrawal(bed.db, {1, random_address(), "0.01"}));
  const auto cancelled = ids[3];
  const auto mismatched = ids[7];
  {
    pqxx::work tx(bed.db);
    tx.exec_params0("UPDATE withdrawals SET cancel_requested_at = now(), cancel_requested_by = 'itest' WHERE id = $1",
                    cancelled);
    tx.commit();
  }
  // All 12 events are in the topic before the worker starts, so its first fetch holds them together.
  {
    test_support::kafka_producer producer;
    std::int64_t outbox_id = 1;
    for (const auto& w : load_withdrawals(bed.db, ids)) {
      const std::string amount = w.id == mismatched ? "0.02" : w.amount;  // the event disagrees with the row
      producer.send(
          event_message(bed.topic, w.user_id, event_payload(w.id, w.user_id, w.to_address, amount), outbox_id++));
    }
    producer.flush();
  }
  auto worker = start_worker(bed.setup());
  INFO("worker log " << worker->log_path());
  std::vector<std::int64_t> paid;
  std::copy_if(ids.begin(), ids.end(), std::back_inserter(paid),
               [&](auto id) { return id != cancelled && id != mismatched; });
  REQUIRE(wait_all_status(bed.db, paid, "confirmed", 60s));
  REQUIRE(wait_all_status(bed.db, {cancelled, mismatched}, "failed", 30s));
  check_contiguous_nonces(load_withdrawals(bed.db, paid), 0);  // 0 (released), then 1..9
  CHECK(load_withdrawal(bed.db, cancelled).failure_reason.value_or("").find("cancelled") != std::string::npos);
  CHECK(worker->metric("broadcaster_failures_total{reason=\"cancelled\"}") == 1);
  // The mismatching event reaches the DLQ after its withdrawal was refunded.
  CHECK(wait_until([&] { return worker->metric("broadcaster_dead_letters_total") == 1; }, 30s, 50ms));
  CHECK(worker->metric("broadcaster_broadcasts_total") == 10);
  // One fee quote for the run, where the one-at-a-time path asks once per withdrawal.
  CHECK(worker->rpc_calls("eth_maxPriorityFeePerGas") < 10);
  CHECK(worker->rpc_calls("eth_sendRawTransaction") == 10);
  const auto figures = check_ledger(bed.db, *bed.node, ids, bed.wallet.address, {{1, "5"}});
  CHECK(figures.paid == 10);
  CHECK(figures.refunded == 2);
}
