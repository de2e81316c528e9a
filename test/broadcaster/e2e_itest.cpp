// End to end through the three daemons on one schema: wallet-service (HTTP API: debit + withdrawal
// + outbox row in one transaction) -> outbox-relay (Kafka) -> broadcaster-worker -> anvil.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"
#include "ledger.hpp"
#include "chain/units.hpp"
#include "http_client.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;

TEST_CASE("e2e: 20 withdrawals from the wallet API through outbox-relay and broadcaster-worker reach the chain",
          "[broadcaster][e2e]") {
  constexpr int count = 20;
  constexpr std::int64_t user_id = 7;
  test_support::test_schema schema;
  auto db = schema.connect();
  // wallet-service always publishes to wallet_events_withdrawal, and other schemas' tests do too:
  // a consumer group of its own, and withdrawal ids no other schema can produce.
  relay_to_chain pipeline(schema, "bcast_e2e", to_wei("1"));
  auto& node = *pipeline.node;
  const auto& wallet = pipeline.wallet;
  const auto first_nonce = node.get_transaction_count(wallet.address, "pending");
  daemon_process api("wallet-service", "wallet",
                     {{"DATABASE_URL", schema.url()},
                      {"WALLET_HTTP_PORT", "0"},
                      {"WALLET_GRPC_PORT", "0"},
                      {"WALLET_API_ENABLE_DEPOSITS", "true"},
                      {"WALLET_LOG_LEVEL", "info"}},
                     "wallet-e2e");
  INFO("logs: worker " << pipeline.worker->log_path() << " relay " << pipeline.relay->log_path() << " wallet "
                       << api.log_path());
  test_support::http_client http("127.0.0.1", api.http_port(), 10s);

  const auto deposit = http.post_json(fmt::format("/v1/accounts/{}/deposits", user_id), R"({"amount":"1"})");
  INFO("deposit: " << deposit.status << " " << deposit.body);
  REQUIRE(deposit.status / 100 == 2);

  std::vector<std::int64_t> ids;
  std::map<std::int64_t, std::pair<chain::address, std::string>> requested;
  chain::uint256 total = 0;
  for (int i = 1; i <= count; ++i) {
    const auto to = random_address();
    const auto amount = fmt::format("0.00{:04}", 1000 + i);
    const nlohmann::json body{
        {"user_id", user_id}, {"to_address", to.to_checksum_string()}, {"amount", amount}, {"chain", "eth"}};
    const auto created = http.post_json("/v1/withdrawals", body.dump(), {{"Idempotency-Key", unique_name("e2e")}});
    INFO("POST /v1/withdrawals " << body.dump() << " -> " << created.status << " " << created.body);
    REQUIRE(created.status == 201);
    const auto answer = nlohmann::json::parse(created.body);
    CHECK(answer.at("status") == "pending");
    const auto id = answer.at("withdrawal_id").get<std::int64_t>();
    ids.push_back(id);
    requested[id] = {to, amount};
    total += to_wei(amount);
  }

  const bool all_confirmed = wait_all_status(db, ids, "confirmed", 120s);
  const auto rows = load_withdrawals(db, ids);
  INFO("withdrawals:\n" << describe(rows));
  REQUIRE(all_confirmed);
  REQUIRE(rows.size() == ids.size());
  // What the node holds is what the users asked for: recipient and exact wei, once each.
  for (const auto& w : rows) {
    INFO("withdrawal " << w.id);
    CHECK(chain::address::parse(w.to_address) == requested.at(w.id).first);
    CHECK(to_wei(w.amount) == to_wei(requested.at(w.id).second));
  }
  check_paid_exactly_once(node, rows, wallet.address);
  check_contiguous_nonces(rows, first_nonce);
  CHECK(node.get_transaction_count(wallet.address, "latest") == first_nonce + count);

  // The API reports the outcome with the transaction hash.
  for (const auto& w : rows) {
    const auto got = http.get(fmt::format("/v1/withdrawals/{}", w.id));
    INFO("GET /v1/withdrawals/" << w.id << " -> " << got.status << " " << got.body);
    REQUIRE(got.status == 200);
    const auto answer = nlohmann::json::parse(got.body);
    CHECK(answer.at("status") == "confirmed");
    REQUIRE(answer.at("tx_hash").is_string());
    CHECK(answer.at("tx_hash").get<std::string>() == w.tx_hash.value_or(""));
  }

  // 1 ETH deposited, the 20 amounts debited once each, nothing refunded.
  CHECK(balance_is(db, user_id, chain::format_units(to_wei("1") - total, chain::eth_decimals)));
  const auto figures = check_ledger(db, node, ids, wallet.address, {{user_id, "1"}});
  CHECK(figures.paid == static_cast<std::size_t>(count));
  const auto got = received_ids(pipeline.worker->log());
  for (const auto id : ids) CHECK(got.contains(id));
  pqxx::read_transaction tx(db);
  CHECK(tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<int>() == 0);
}
