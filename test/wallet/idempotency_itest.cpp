// Idempotency-Key: a retried request is answered as the first one was and debits once; the key
// reused for another request is refused; concurrent requests with one key debit once.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "wallet_process.hpp"

using json = nlohmann::json;

namespace {

using wallet_test::withdrawal;

}  // namespace

TEST_CASE("the same key and body replays the answer and debits once", "[wallet][idempotency]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();
  REQUIRE(client.post_json("/v1/accounts/5/deposits", R"({"amount": "2"})").status == 200);

  const std::map<std::string, std::string> key = {{"Idempotency-Key", "order-5-1"}};
  const auto first = client.post_json("/v1/withdrawals", withdrawal(5, "1.5"), key);
  REQUIRE(first.status == 201);
  // The same request, the amount written differently but equal: the same withdrawal.
  const auto again = client.post_json("/v1/withdrawals", withdrawal(5, "1.50"), key);
  CHECK(again.status == 201);
  CHECK(again.body == first.body);
  CHECK(again.header("idempotent-replayed") == "true");
  CHECK(wallet_test::balance_of(schema, 5) == "0.500000000000000000");

  // Replayed even though the balance could not pay it a second time.
  CHECK(client.post_json("/v1/withdrawals", withdrawal(5, "1.5"), key).body == first.body);

  const auto state = wallet_test::read_state(schema);
  CHECK(state.withdrawals == 1);
  CHECK(state.outbox == 1);

  // Same key, different body: 409, nothing written.
  const auto other = client.post_json("/v1/withdrawals", withdrawal(5, "0.25"), key);
  CHECK(other.status == 409);
  CHECK(json::parse(other.body)["error"]["code"] == "idempotency_key_reused");
  CHECK(wallet_test::read_state(schema) == state);

  // A new key is a new withdrawal.
  CHECK(client.post_json("/v1/withdrawals", withdrawal(5, "0.25"), {{"Idempotency-Key", "order-5-2"}}).status == 201);
  CHECK(wallet_test::balance_of(schema, 5) == "0.250000000000000000");

  // A request refused for want of funds does not use up its key.
  const std::map<std::string, std::string> key3 = {{"Idempotency-Key", "order-5-3"}};
  CHECK(client.post_json("/v1/withdrawals", withdrawal(5, "1"), key3).status == 409);
  REQUIRE(client.post_json("/v1/accounts/5/deposits", R"({"amount": "1"})").status == 200);
  CHECK(client.post_json("/v1/withdrawals", withdrawal(5, "1"), key3).status == 201);
  CHECK(wallet_test::balance_of(schema, 5) == "0.250000000000000000");
}

TEST_CASE("concurrent requests with one key create one withdrawal", "[wallet][idempotency]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  {
    auto client = wallet.client();
    REQUIRE(client.post_json("/v1/accounts/9/deposits", R"({"amount": "1"})").status == 200);
  }
  constexpr int clients = 24;
  std::vector<std::string> bodies(clients);
  std::vector<unsigned> statuses(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto client = wallet.client();
      const auto res = client.post_json("/v1/withdrawals", withdrawal(9, "0.6"), {{"Idempotency-Key", "same-key"}});
      statuses[static_cast<std::size_t>(i)] = res.status;
      bodies[static_cast<std::size_t>(i)] = res.body;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < clients; ++i) {
    INFO(bodies[static_cast<std::size_t>(i)]);
    CHECK(statuses[static_cast<std::size_t>(i)] == 201);
    CHECK(bodies[static_cast<std::size_t>(i)] == bodies[0]);
  }
  CHECK(wallet_test::balance_of(schema, 9) == "0.400000000000000000");
  const auto state = wallet_test::read_state(schema);
  CHECK(state.withdrawals == 1);
  CHECK(state.outbox == 1);
}
